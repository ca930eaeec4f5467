"""Targets: what a run needs of the system it drills, one module per kind of target."""

from __future__ import annotations

from pathlib import Path

from aidrill.errors import RefusedError
from aidrill.plan import Plan
from aidrill.targets._target import CAP, STALL, Heal, Target, wait_for_nothing_off
from aidrill.targets.lab import LabTarget

__all__ = [
    "CAP",
    "STALL",
    "Heal",
    "LabTarget",
    "Target",
    "target_for",
    "wait_for_nothing_off",
]


def target_for(kind: str, plan: Plan, state_dir: Path) -> Target:
    """The target a run of ``kind`` drills."""
    if kind == "lab":
        return LabTarget(state_dir, plan)
    raise RefusedError(f"target {kind!r} cannot be drilled yet: aidrill drills the lab")
