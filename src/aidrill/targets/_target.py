"""What a run asks of the target it drills, whatever kind the target is."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

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
