"""The quarterly report's rows: per component, per cadence item, per rollback, per
blind fault and per posture estimate. Each is what every format prints (HTML, PDF,
Markdown and JUnit read the attributes; ``results.json`` writes ``to_json()``), so a
renamed field fails type-checking instead of printing an empty cell."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from aidrill._json import Json, JsonObject

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def _json(row: DataclassInstance) -> JsonObject:
    document: JsonObject = asdict(row)
    return document


@dataclass(frozen=True)
class WorstRto:
    """The worst achieved RTO over a component's records and their judged episodes."""

    worst_rto: float | None  # seconds, where the worst one recovered
    worst_rto_text: str  # "6.8 s (1 s buckets)", "> 30.0 s, not recovered", "—"
    not_recovered: int  # records with a judged episode that never recovered
    worst_window: float | None  # the longest window one was watched without recovering


@dataclass(frozen=True)
class ComponentSummary:
    """One component of the plan over the quarter's valid runs (the headline table)."""

    name: str
    tier: str
    rto_target: float
    rpo_target: float | None
    rationale: str | None
    bia: str | None
    owner: str | None
    status: str  # met, missed, inconclusive, not drilled
    runs: int
    worst_rto: float | None
    worst_rto_text: str
    not_recovered: int
    worst_window: float | None
    worst_rpo: float | str | None  # seconds, or "lost"
    worst_rpo_text: str
    verdicts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> JsonObject:
        return _json(self)


@dataclass(frozen=True)
class CadenceRow:
    """One cadence item: each kind of exercise the plan asks for, and every component."""

    type: str
    cadence: str
    held: list[str]
    gap: bool
    note: str
    last_held: str | None = None
    next_due: str | None = None

    def to_json(self) -> JsonObject:
        return _json(self)


@dataclass(frozen=True)
class RollbackRow:
    """A rollback as the run recorded it (or, for a plain run, as its journal did)."""

    activity: str | None
    status: str | None
    error: str | None = None

    @classmethod
    def of(cls, activity: Json, status: Json, error: Json = None) -> RollbackRow:
        def text(value: Json) -> str | None:
            return None if value is None else str(value)

        return cls(text(activity), text(status), text(error))

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def to_json(self) -> JsonObject:
        return _json(self)


@dataclass(frozen=True)
class BlindFaultRow:
    """A fault the health checks did not see, in a valid drill of it."""

    run_id: str
    experiment: str
    component: str
    measured: bool
    seconds: float | None
    detected: bool | None
    window_seconds: float | None
    reaction: str | None
    limit_seconds: float | None
    over_limit: bool | None
    users_hurt: bool | None
    health_said_healthy: float | None
    remediation: str | None

    def to_json(self) -> JsonObject:
        return _json(self)


@dataclass(frozen=True)
class PostureRow:
    """Estimate beside measure for one component of the plan."""

    name: str
    estimated_rto: str
    estimated_rpo: str
    measured_status: str
    measured_rto: str
    measured_rpo: str
    failed: list[str]
    unknown: list[str]

    def to_json(self) -> JsonObject:
        return _json(self)


@dataclass
class DigestRow:
    """One row of the printed evidence appendix: a copied run (its files, their bytes,
    the SHA-256 of its own sealed manifest, its redacted copies) or one other file."""

    run: str | None = None
    path: str | None = None
    files: int = 1
    bytes: int = 0
    seal: str | None = None  # a run's manifest hash; a file's own SHA-256 is in sha256
    sha256: str | None = None
    redacted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PhaseSlice:
    phase: str  # "detect", "provision+load"...
    seconds: float


@dataclass(frozen=True)
class QuarterPhases:
    """A drill's slowest recovery of one quarter, split into its phases (none: no valid
    run of that quarter recorded phases)."""

    quarter: str
    run_id: str | None = None
    rto_seconds: float | None = None
    phases: list[PhaseSlice] = field(default_factory=list)


@dataclass(frozen=True)
class PhaseTrendRow:
    """One drill and component, quarter by quarter."""

    drill: str
    component: str
    quarters: list[QuarterPhases]

    def to_json(self) -> JsonObject:
        return _json(self)


@dataclass(frozen=True)
class ThirdPartyRow:
    """A provider the recovery depends on, and whether it took part this period."""

    name: str
    provides: str
    participated: bool
    how: str | None = None
