"""The embedded lab as a kind of target (entry point ``lab`` in ``aidrill.targets``)."""

from __future__ import annotations

from pathlib import Path

from aidrill.kinds import TargetKind
from aidrill.plan import Plan
from aidrill.targets import Target, default_state_dir


def make_target(plan: Plan, state_dir: Path | None) -> Target:
    from aidrill.targets.lab._adapter import LabTarget

    return LabTarget(state_dir or default_state_dir(), plan)


KIND = TargetKind(
    name="lab",
    target=make_target,
    summary="the embedded two-region lab on 127.0.0.1 (aidrill lab up)",
    embedded=True,
)
