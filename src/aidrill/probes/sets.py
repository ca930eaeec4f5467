"""Probe sets: reusable steady-state checks written in YAML under ``probes/``.

Public so that targets can name the checks they answer without importing the probe
activity of ``aidrill.probes``, which itself asks the targets (no import circle)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aidrill._documents import read_document, validate_as
from aidrill._durations import Duration
from aidrill._json import JsonDocument, JsonOut
from aidrill.errors import ProbeSetError


@dataclass(frozen=True)
class CheckOutcome:
    """One sample of a steady-state check: whether it held, and the figures it was held
    to (each kind of check has its own: success ratio, p95 and quality of inference;
    capacity; the data tiers' problems). ``probes.jsonl`` keeps it as one JSON object,
    ``{"check", "holds", **figures}``."""

    check: str
    holds: bool
    figures: Mapping[str, JsonOut] = field(default_factory=dict)

    def to_record(self) -> JsonDocument:
        return {"check": self.check, "holds": self.holds, **self.figures}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CheckOutcome:
        figures = {k: v for k, v in record.items() if k not in ("check", "holds")}
        return cls(str(record.get("check")), record.get("holds") is True, figures)

    def describe(self) -> str:
        """Its figures as a sentence reads them: ``success ratio 0.4, quality 0.9``."""
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.figures.items())


class InferenceCheck(BaseModel):
    """Send a sample of golden-set requests and hold them to thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["inference"]
    name: str
    requests: int = Field(default=20, ge=1, le=1000)
    concurrency: int = Field(default=4, ge=1, le=32)
    timeout: Duration = 2.0
    success_ratio: float = Field(ge=0, le=1)
    p95_latency: Duration
    quality: float = Field(ge=0, le=1)
    # A sample that misses is taken again, up to this many samples in all, before the
    # check fails: on a busy host one slow second must not decide a steady state. Every
    # sample is kept in the run's evidence.
    attempts: int = Field(default=1, ge=1, le=5)
    attempt_pause: Duration = 2.0


class LabCapacityCheck(BaseModel):
    """The lab serves at its nominal GPU capacity."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["lab-capacity"]
    name: str


class LabDataCheck(BaseModel):
    """The lab's stateful tiers serve: the feature store's primary answers, the vector
    index is loaded where traffic goes, the pipelines run, and replication (when it
    runs at all) is within its backlog limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["lab-data"]
    name: str
    max_replication_backlog: Duration = 5.0


class ProbeSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["probe-set"]
    name: str
    description: str
    checks: list[InferenceCheck | LabCapacityCheck | LabDataCheck] = Field(min_length=1)


def find_probe_set(reference: str, base: Path | None = None) -> Path:
    """Resolve ``probes/x.yaml`` (or plain ``x``) against the working directory."""
    base = base or Path.cwd()
    candidates = [Path(reference), base / reference, base / "probes" / f"{reference}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ProbeSetError(f"probe set {reference!r} not found (looked in {base} and its probes/)")


def load_probe_set(reference: str, base: Path | None = None) -> ProbeSet:
    path = find_probe_set(reference, base)
    document = read_document(path, ProbeSetError)
    return validate_as(document, ProbeSet, ProbeSetError, "a probe set must be a mapping")
