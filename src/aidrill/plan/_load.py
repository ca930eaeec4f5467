"""Loading and validating a plan file."""

from __future__ import annotations

from pathlib import Path

from aidrill._documents import Document, read_document, validate_as
from aidrill.errors import PlanError
from aidrill.plan._model import Plan

DEFAULT_PLAN_PATH = Path("drplan.yaml")


def load_plan(path: str | Path = DEFAULT_PLAN_PATH) -> Plan:
    """Read and validate a DR plan; errors name the file, line and field. Paths it names
    are relative to its own folder.

    A drill asks for its plan many times (the run, and every probe call through the
    Chaos Toolkit functions): a file unchanged since it was last read (same inode, size,
    modification and change times) is not parsed again; each caller gets its own copy."""
    where = Path(path)
    try:
        seen = where.stat()
        key: tuple[object, ...] | None = (
            str(where.resolve()),
            seen.st_ino,
            seen.st_size,
            seen.st_mtime_ns,
            seen.st_ctime_ns,
        )
    except OSError:
        key = None  # read_document says what is wrong
    if key is not None and key in _LOADED:
        return _LOADED[key].model_copy(deep=True)
    document = read_document(where, PlanError)
    plan = plan_from_document(document).located_at(where.resolve().parent)
    if key is not None:
        if len(_LOADED) >= 16:
            _LOADED.clear()
        _LOADED[key] = plan.model_copy(deep=True)
    return plan


_LOADED: dict[tuple[object, ...], Plan] = {}


def plan_from_document(document: Document) -> Plan:
    return validate_as(
        document,
        Plan,
        PlanError,
        "a plan must be a mapping with system, regions, slo and components",
    )
