"""The blast radius of actions from the Chaos Toolkit drivers aidrill knows, read from
their arguments before anything runs. What can only be counted against the live
target (how many instances a filter matches) is resolved by the target at run start
and by ``--dry-run``; this is the part that needs no call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aidrill._json import Provider
from aidrill._scope import FaultScope
from aidrill.kinds import kind_of_driver, known_driver_scope
from aidrill.plan import Plan

if TYPE_CHECKING:
    from chaoslib.types import Experiment


def known_scope(provider: Provider) -> FaultScope | None:
    """The scope of a driver action (``module.func``) an installed kind of target knows."""
    if provider.get("type") != "python":
        return None
    return known_driver_scope(f"{provider.get('module')}.{provider.get('func')}")


def driver_region(
    experiment: Experiment, provider: Provider, plan: Plan | None = None
) -> str | None:
    """The region a driver action acts in, as the kind of target whose driver it is
    reads it (chaostoolkit-aws: its ``aws_region``; chaostoolkit-kubernetes: the plan's
    region whose cluster is its kube context); None for a driver no kind knows."""
    kind = kind_of_driver(str(provider.get("module", "")))
    if kind is None or kind.driver_region is None:
        return None
    return kind.driver_region(experiment, provider, plan)


def driver_share(provider: Provider) -> float | None:
    """The share of a group's GPU nodes an action names outright (a percentage)."""
    arguments = provider.get("arguments")
    percent = arguments.get("instance_percent") if isinstance(arguments, dict) else None
    if isinstance(percent, int | float) and not isinstance(percent, bool):
        return float(percent) / 100
    return None
