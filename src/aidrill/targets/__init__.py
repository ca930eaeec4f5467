"""Targets: what a run needs of the system it drills, one module per kind of target.

A target answers pre-flight (nominal per the plan, or what is off), where the load
goes and where each tier is probed from outside, the blast radius of each action
resolved against it, what it forbids at injection, and how to heal it. Run, probes
and validation ask the target; no other module knows a target's internals.

The tier observer (``aidrill.targets.observer``), which needs Redis and boto3, is not
imported here: a probe activity asks a target without loading either.
"""

from __future__ import annotations

import os
from pathlib import Path

from aidrill._json import Configuration
from aidrill.errors import RefusedError
from aidrill.kinds import target_kind
from aidrill.plan import DEFAULT_PLAN_PATH, Plan, load_plan
from aidrill.targets._endpoints import Address, ArtifactStore, Endpoints, ReplicationReport
from aidrill.targets._target import (
    CAP,
    STALL,
    Activity,
    Admission,
    Heal,
    LeftFault,
    Resolved,
    Target,
    wait_for_nothing_off,
)

__all__ = [
    "CAP",
    "STALL",
    "Activity",
    "Address",
    "Admission",
    "ArtifactStore",
    "Endpoints",
    "Heal",
    "LeftFault",
    "ReplicationReport",
    "Resolved",
    "Target",
    "default_state_dir",
    "target_for",
    "target_of_configuration",
    "wait_for_nothing_off",
]


def default_state_dir() -> Path:
    from aidrill.lab import default_state_dir as lab_state_dir

    return lab_state_dir()


def target_for(kind: str, plan: Plan, state_dir: Path | None = None) -> Target:
    """The target a run of ``kind`` drills, under ``plan``; refused unless the plan's
    allow-list names that kind of target."""
    if kind not in plan.allow.targets:
        raise RefusedError(
            f"the plan's allow-list does not name target {kind!r} "
            f"(allow.targets: {', '.join(plan.allow.targets) or 'none'})"
        )
    made: Target = target_kind(kind).target(plan, state_dir)
    return made


def target_of_configuration(configuration: Configuration) -> Target:
    """The target a Chaos Toolkit activity acts on, from its configuration: the kind
    and plan the aidrill control recorded there, else the plan's own."""
    plan_path = configuration.get("aidrill_plan") or os.environ.get("AIDRILL_PLAN")
    plan = load_plan(Path(str(plan_path)) if plan_path else DEFAULT_PLAN_PATH)
    kind = str(configuration.get("aidrill_target") or plan.target)
    state_dir = configuration.get("aidrill_state_dir")
    return target_for(kind, plan, Path(str(state_dir)) if state_dir else None)
