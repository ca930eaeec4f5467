"""A posture check's result, and what the checks of one component imply together."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aidrill._durations import format_seconds

Status = Literal["pass", "fail", "unknown"]
NOT_ACHIEVABLE = "not achievable"


@dataclass
class Outcome:
    """What one check's probe found."""

    status: Status
    why: str
    evidence: dict[str, Any] = field(default_factory=dict)
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
    evidence: dict[str, Any] = field(default_factory=dict)
    rpo_bound: float | None = None
    rpo_bound_unknown: bool = False
    rto_not_achievable: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Estimate:
    """The conservative bounds the checks of one tier imply."""

    rto: str  # "not achievable" or "no bound implied by configuration"
    rpo: str  # "≤ 15m", "unknown (…)", "not bounded (…)", "not applicable"
    rpo_seconds: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def estimate(tier: str, checks: list[Check], stateful: bool) -> Estimate:
    """RTO: not achievable where a failed check says so. RPO: the tightest bound a
    passing copy mechanism guarantees; unknown where copies exist without a bound; not
    bounded where no copy of the data outside the primary was found."""
    mine = [c for c in checks if c.tier == tier]
    rto = (
        NOT_ACHIEVABLE
        if any(c.rto_not_achievable and c.status == "fail" for c in mine)
        else "no bound implied by configuration"
    )
    if not stateful:
        return Estimate(rto, "not applicable", None)
    bounds = [c.rpo_bound for c in mine if c.status == "pass" and c.rpo_bound is not None]
    if bounds:
        best = min(bounds)
        return Estimate(rto, f"≤ {format_seconds(best)}", best)
    copies = [c for c in mine if c.status == "pass" and c.rpo_bound_unknown]
    if copies:
        names = ", ".join(c.id for c in copies)
        return Estimate(rto, f"unknown (copies without a time bound: {names})", None)
    if any(c.status == "unknown" for c in mine):
        return Estimate(rto, "unknown (a check could not tell)", None)
    if not mine:
        return Estimate(rto, "unknown (nothing configured to check)", None)
    return Estimate(rto, "not bounded (no copy outside the primary region found)", None)
