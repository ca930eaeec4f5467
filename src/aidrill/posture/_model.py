"""A posture check's result, and what the checks of one component imply together."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from aidrill._durations import format_seconds
from aidrill._json import JsonDocument

Status = Literal["pass", "fail", "unknown"]
NOT_ACHIEVABLE = "not achievable"


@dataclass
class Outcome:
    """What one check's probe found."""

    status: Status
    why: str
    evidence: JsonDocument = field(default_factory=dict)
    rpo_bound: float | None = None
    rpo_bound_unknown: bool = False
    rto_not_achievable: bool = False


@dataclass(frozen=True)
class Check:
    """One configuration check: its verdict, why, the read-only calls it made and the
    (redacted) evidence it read. ``rpo_bound`` (seconds) is what a passing check
    guarantees; ``rto_not_achievable`` marks a failure that rules any RTO out."""

    id: str
    tier: str
    title: str
    status: Status
    why: str
    calls: list[str]
    evidence: JsonDocument = field(default_factory=dict)
    rpo_bound: float | None = None
    rpo_bound_unknown: bool = False
    rto_not_achievable: bool = False

    def to_json(self) -> JsonDocument:
        return asdict(self)


@dataclass(frozen=True)
class Estimate:
    """The conservative bounds the checks of one tier imply."""

    rto: str  # "not achievable" or "no bound implied by configuration"
    rpo: str  # "≤ 15m", "unknown (…)", "not bounded (…)", "not applicable"
    rpo_seconds: float | None

    def to_json(self) -> JsonDocument:
        return asdict(self)


# The checks that copy a tier's data out of the primary region (its RPO rests on them).
COPY_CHECKS = (".replication", ".bucket-replication", ".online-replication", ".backup")


def estimate(tier: str, checks: list[Check], stateful: bool) -> Estimate:
    """RTO: not achievable where a failed check says so. RPO: the worst of its parts,
    conservatively: any copy mechanism of the tier that fails leaves its data not
    bounded (a failure is never "unknown"); else unknown where a part could not be told
    or copies exist without a time bound; else the weakest bound the passing copy
    mechanisms guarantee."""
    mine = [c for c in checks if c.tier == tier]
    rto = (
        NOT_ACHIEVABLE
        if any(c.rto_not_achievable and c.status == "fail" for c in mine)
        else "no bound implied by configuration"
    )
    if not stateful:
        return Estimate(rto, "not applicable", None)
    copies = [c for c in mine if c.id.endswith(COPY_CHECKS)]
    failed = [c for c in copies if c.status == "fail"]
    if failed:
        why = "; ".join(f"{c.id}: {c.why}" for c in failed)
        return Estimate(rto, f"not bounded (fails: {why})", None)
    if not mine:
        return Estimate(rto, "unknown (nothing configured to check)", None)
    if any(c.status == "unknown" for c in copies):
        names = ", ".join(c.id for c in copies if c.status == "unknown")
        return Estimate(rto, f"unknown (could not tell: {names})", None)
    untimed = [c for c in copies if c.status == "pass" and c.rpo_bound_unknown]
    if untimed:
        names = ", ".join(c.id for c in untimed)
        return Estimate(rto, f"unknown (copies without a time bound: {names})", None)
    bounds = [c.rpo_bound for c in copies if c.status == "pass" and c.rpo_bound is not None]
    if bounds:
        worst = max(bounds)
        return Estimate(rto, f"≤ {format_seconds(worst)}", worst)
    return Estimate(rto, "not bounded (no copy outside the primary region found)", None)
