"""Loading and validating experiments before anything is touched."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from aidrill._documents import Document, raise_validation_error, read_document
from aidrill.errors import ExperimentError
from aidrill.experiment._blast import check_blast_radius
from aidrill.experiment._estate_names import estate_name_problems
from aidrill.experiment._extension import AidrillExtension
from aidrill.plan import Plan

if TYPE_CHECKING:
    from chaoslib.types import Experiment, Extension

CONTROL_MODULE = "aidrill.run.control"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedExperiment:
    """A validated experiment; ``extension`` is None for a plain Chaos Toolkit
    experiment (it runs with rollbacks always, redaction and evidence, and nothing is
    measured against the plan)."""

    path: Path
    raw: Experiment
    extension: AidrillExtension | None

    @property
    def plain(self) -> bool:
        return self.extension is None

    @property
    def title(self) -> str:
        return str(self.raw.get("title", self.path.stem))

    @property
    def slug(self) -> str:
        return self.path.stem

    def for_chaoslib(self) -> Experiment:
        """A copy to hand to chaoslib, with the aidrill control present exactly once."""
        experiment = copy.deepcopy(self.raw)
        controls = experiment.setdefault("controls", [])
        if not any((c.get("provider") or {}).get("module") == CONTROL_MODULE for c in controls):
            controls.append(
                {"name": "aidrill", "provider": {"type": "python", "module": CONTROL_MODULE}}
            )
        return experiment


def find_aidrill_extension(raw: Experiment) -> tuple[int, Extension] | None:
    extensions = raw.get("extensions") or []
    if not isinstance(extensions, list):
        return None
    for index, extension in enumerate(extensions):
        if isinstance(extension, dict) and extension.get("name") == "aidrill":
            return index, extension
    return None


def load_experiment(path: str | Path, plan: Plan | None = None) -> LoadedExperiment:
    """Read and validate an experiment: Chaos Toolkit's rules, then aidrill's extension."""
    document = read_document(Path(path), ExperimentError)
    return experiment_from_document(document, plan)


def experiment_from_document(document: Document, plan: Plan | None = None) -> LoadedExperiment:
    raw = document.data
    if not isinstance(raw, dict):
        raise ExperimentError("an experiment must be a mapping", file=document.path)
    _ensure_valid_for_chaoslib(document, raw)
    found = find_aidrill_extension(raw)
    if found is None:
        return LoadedExperiment(document.path, raw, None)
    index, body = found
    try:
        extension = AidrillExtension.model_validate(body)
    except ValidationError as exc:
        raise_validation_error(document, exc, ExperimentError, prefix=("extensions", index))
        raise
    if plan is not None:
        for position, name in enumerate(extension.components):
            if plan.component(name) is None:
                known = ", ".join(c.name for c in plan.components)
                location = ("extensions", index, "components", position)
                raise ExperimentError(
                    f"unknown component {name!r}; the plan has: {known}",
                    file=document.path,
                    line=document.line_of(location),
                    field="extensions.aidrill.components",
                )
    if plan is not None:
        check_blast_radius(raw, plan, extension.full_outage, file=str(document.path))
        problems = estate_name_problems(raw, plan, extension.target)
        if problems:
            listed = "".join(f"\n  {p}" for p in problems[1:50])
            raise ExperimentError(problems[0] + listed, file=document.path)
    return LoadedExperiment(document.path, raw, extension)


def _ensure_valid_for_chaoslib(document: Document, raw: dict[str, Any]) -> None:
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    chaos_logger = logging.getLogger("chaostoolkit")
    previous = chaos_logger.level
    chaos_logger.setLevel(logging.ERROR)
    try:
        ensure_experiment_is_valid(copy.deepcopy(raw))
    except ChaosException as exc:
        raise ExperimentError(str(exc), file=document.path) from exc
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise ExperimentError(
            f"not a valid Chaos Toolkit experiment: {exc}", file=document.path
        ) from exc
    finally:
        chaos_logger.setLevel(previous)
