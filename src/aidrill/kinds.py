"""Kinds of target, as plug-ins: each system aidrill can drill (the embedded lab, an
AWS estate, a Kubernetes cluster, or one a third party ships as its own package) is
named by an entry point in the group ``aidrill.targets`` whose object is a
:class:`TargetKind`. Nothing else in aidrill lists the kinds: the plan's ``target``
and allow-list, an experiment's ``target``, the offline blast radius of known driver
actions, the names an experiment gives the estate and posture all ask this registry.

A third party's ``pyproject.toml``::

    [project.entry-points."aidrill.targets"]
    mycloud = "mycloud_aidrill.kind:KIND"

A kind's module stays light: its ``target`` and ``posture`` import the adapter (and
its SDKs) when called, so naming a kind imports none of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator

from aidrill._arguments import Arguments
from aidrill._json import Provider
from aidrill._scope import FaultScope
from aidrill.errors import PlanError

__all__ = [
    "ENTRY_POINT_GROUP",
    "FaultScope",
    "TargetKind",
    "TargetName",
    "kind_of_driver",
    "known_driver_scope",
    "target_kind",
    "target_kinds",
]

if TYPE_CHECKING:
    from chaoslib.types import Experiment

    from aidrill.plan import Plan

ENTRY_POINT_GROUP = "aidrill.targets"
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")

# (experiment, provider, plan) -> the region a driver action acts in, or None.
RegionOf = Callable[["Experiment", Provider, "Plan | None"], "str | None"]
# (experiment, provider, plan) -> why a driver action has no region, or None.
NoRegionReason = Callable[["Experiment", Provider, "Plan"], "str | None"]
# (activities as (where, module, arguments), plan) -> one sentence per unknown name.
EstateNames = Callable[[list[tuple[str, str, Arguments]], "Plan"], list[str]]


@dataclass(frozen=True)
class TargetKind:
    """What aidrill needs to know of one kind of target.

    ``target`` makes the adapter (called with the plan and the state folder, which
    only an embedded kind uses); ``drivers`` gives the blast radius
    of the Chaos Toolkit actions the kind knows, by ``module.func``, and
    ``driver_modules`` the module prefixes whose region ``driver_region`` reads
    (``why_no_region`` says why it found none, where the kind can tell);
    ``check_plan`` says what the plan lacks to drill the kind; ``estate_names``
    checks the names an experiment gives the estate; ``posture`` (called with the
    plan) reads the estate's recovery posture without a fault.
    ``embedded``: aidrill starts, resets and stops the system itself (the lab)."""

    name: str
    target: Callable[[Plan, Path | None], Any]
    summary: str = ""
    drivers: Mapping[str, FaultScope] = field(default_factory=dict)
    driver_modules: tuple[str, ...] = ()
    driver_region: RegionOf | None = None
    why_no_region: NoRegionReason | None = None
    check_plan: Callable[[Plan], list[str]] | None = None
    estate_names: EstateNames | None = None
    posture: Callable[[Plan], Any] | None = None
    embedded: bool = False

    def owns(self, module: str) -> bool:
        return module.startswith(self.driver_modules) if self.driver_modules else False


@dataclass(frozen=True)
class _Registry:
    kinds: dict[str, TargetKind]
    broken: dict[str, str]  # name -> why its entry point could not be used


@cache
def _registry() -> _Registry:
    kinds: dict[str, TargetKind] = {}
    broken: dict[str, str] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = f"{point.value} (from {point.dist.name if point.dist else 'an unknown package'})"
        if point.name in kinds or point.name in broken:
            broken[point.name] = f"two packages register target {point.name!r}; one is {where}"
            kinds.pop(point.name, None)
            continue
        try:
            kind = point.load()
        except Exception as exc:  # a broken plug-in must not break the others
            broken[point.name] = f"{where} could not be loaded: {type(exc).__name__}: {exc}"
            continue
        if not isinstance(kind, TargetKind) or kind.name != point.name:
            broken[point.name] = f"{where} is not a TargetKind named {point.name!r}"
        elif not _NAME.match(kind.name):
            broken[point.name] = f"{where}: {kind.name!r} is not a target name"
        else:
            kinds[kind.name] = kind
    return _Registry(kinds, broken)


def target_kinds() -> dict[str, TargetKind]:
    """Every installed kind of target, by name."""
    return dict(_registry().kinds)


def target_kind(name: str) -> TargetKind:
    """The installed kind ``name``; a PlanError that says what is installed otherwise."""
    registry = _registry()
    if name in registry.kinds:
        return registry.kinds[name]
    if name in registry.broken:
        raise PlanError(f"target {name!r}: {registry.broken[name]}")
    installed = ", ".join(sorted(registry.kinds)) or "none (is aidrill installed?)"
    raise PlanError(
        f"no target {name!r} is installed (installed: {installed}); a package adds one "
        f"with an entry point in group {ENTRY_POINT_GROUP!r}"
    )


def known_driver_scope(action: str) -> FaultScope | None:
    """The blast radius of a known driver action (``module.func``), from every kind."""
    for kind in _registry().kinds.values():
        if action in kind.drivers:
            return kind.drivers[action]
    return None


def kind_of_driver(module: str) -> TargetKind | None:
    """The kind whose driver modules include ``module``."""
    return next((k for k in _registry().kinds.values() if k.owns(module)), None)


def _installed(name: str) -> str:
    try:
        target_kind(name)
    except PlanError as exc:
        raise ValueError(str(exc)) from None
    return name


# A plan's or experiment's ``target``: the name of an installed kind.
TargetName = Annotated[str, AfterValidator(_installed)]
