"""What a run asks of the target it drills, whatever kind the target is."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aidrill.targets._endpoints import Endpoints

# A wait for the target to become nominal follows progress: it gives up once what is
# off has not changed for STALL seconds, and in any case after CAP.
STALL = 30.0
CAP = 240.0


@dataclass(frozen=True)
class Heal:
    """What a heal (reset, then a bounded wait for nominal) found and left."""

    problems_before: list[str]
    problems_after: list[str]
    cleared: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def healed(self) -> bool:
        return not self.problems_after

    def to_record(self) -> dict[str, Any]:
        return {
            "problems_before": self.problems_before,
            "problems_after": self.problems_after,
            "cleared": [
                {"kind": c.get("kind"), "region": c.get("region"), "owner": c.get("owner")}
                for c in self.cleared
            ],
            "seconds": round(self.seconds, 3),
            "healed": self.healed,
        }


@dataclass(frozen=True)
class Resolved:
    """One fault action's blast radius, resolved against the live target."""

    action: str
    touches: str  # what it would touch, in words
    region: str | None = None
    share: float | None = None  # of the region's GPU nodes, where that applies
    refused: str | None = None  # why the plan's limits refuse it


class Target(Protocol):
    """A target answers what a run needs of it, and nothing else."""

    kind: str

    def problems(self) -> list[str]:
        """What keeps the target from its nominal state per the plan, now; empty when
        it is nominal (pre-flight)."""

    def wait_nominal(self) -> list[str]:
        """Wait, following progress, until the target is nominal; what is still off."""

    def heal(self) -> Heal:
        """Clear every fault left on the target and wait (bounded) for nominal."""

    def endpoints(self) -> Endpoints:
        """Where the load goes and where each tier is probed from outside."""

    def ground_truth(self, since: float) -> list[dict[str, Any]]:
        """What the target itself recorded happening (only a lab keeps this)."""

    def check_injection(
        self, activity: dict[str, Any], configuration: dict[str, Any], full_outage: bool
    ) -> None:
        """Refuse (RefusedError) an action about to be injected that the plan forbids."""

    def run_check(self, check: Any) -> dict[str, Any]:
        """A steady-state check particular to this kind of target."""

    def resolve(self, experiment: dict[str, Any]) -> list[Resolved]:
        """Each fault action's blast radius against the live target (read-only calls)."""

    def admit(self, experiment: dict[str, Any]) -> list[Resolved]:
        """Before anything runs: refuse (RefusedError) what the plan's allow-list or
        limits forbid; return the resolved blast radius."""


def wait_for_nothing_off(
    problems: Callable[[], list[str]], stall: float = STALL, cap: float = CAP
) -> list[str]:
    """Poll ``problems`` until it is empty; give up once its answer has not changed for
    ``stall`` seconds (nothing is moving) or after ``cap``. Return what is still off."""
    started = time.monotonic()
    current = problems()
    moved_at = started
    while current:
        now = time.monotonic()
        if now - moved_at >= stall or now - started >= cap:
            break
        time.sleep(0.25)
        latest = problems()
        if latest != current:
            moved_at = time.monotonic()
        current = latest
    return current
