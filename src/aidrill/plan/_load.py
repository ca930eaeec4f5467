"""Loading and validating a plan file."""

from __future__ import annotations

from pathlib import Path

from aidrill._documents import Document, read_document, validate_as
from aidrill.errors import PlanError
from aidrill.plan._model import Plan

DEFAULT_PLAN_PATH = Path("drplan.yaml")


def load_plan(path: str | Path = DEFAULT_PLAN_PATH) -> Plan:
    """Read and validate a DR plan; errors name the file, line and field. Paths it names
    are relative to its own folder."""
    document = read_document(Path(path), PlanError)
    return plan_from_document(document).located_at(Path(path).resolve().parent)


def plan_from_document(document: Document) -> Plan:
    return validate_as(
        document,
        Plan,
        PlanError,
        "a plan must be a mapping with system, regions, slo and components",
    )
