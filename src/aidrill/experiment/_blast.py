"""Blast radius: every fault action's declared scope, checked against the plan's limits."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from aidrill._json import JsonObject, Provider
from aidrill._scope import NOT_FAULTS, SCOPE_KINDS, FaultScope, ScopeKind, scope_of
from aidrill.errors import ExperimentError, RefusedError
from aidrill.experiment._known import driver_region, driver_share, known_scope
from aidrill.kinds import kind_of_driver
from aidrill.plan import Plan

if TYPE_CHECKING:
    from chaoslib.types import Experiment


@dataclass(frozen=True)
class PlannedFault:
    index: int
    name: str
    scope: FaultScope
    region: str
    arguments: JsonObject  # as the action gives them, its region (and share) first


def planned_faults(
    experiment: Experiment, plan: Plan | None = None
) -> Iterator[PlannedFault | tuple[int, str]]:
    """Each method action with its scope (from its function, or declared for it in the
    aidrill extension's ``scopes``), or (index, name) when it has none."""
    declared = extension_scopes(experiment)
    for index, activity in enumerate(experiment.get("method") or []):
        if not isinstance(activity, dict) or activity.get("type") != "action":
            continue
        name = str(activity.get("name", f"method[{index}]"))
        provider = activity.get("provider")
        provider = provider if isinstance(provider, dict) else {}
        scope = declared_scope(provider) or known_scope(provider)
        # A process provider's arguments may be one string ("stop redis") or a list;
        # only a python provider's are keyword arguments.
        given = provider.get("arguments")
        arguments = dict(given) if isinstance(given, dict) else {}
        region = driver_region(experiment, provider, plan)
        if region is not None:
            share = driver_share(provider)
            arguments = {"region": region, **({"fraction": share} if share else {}), **arguments}
        own = declared.get(name)
        kind = own.get("kind") if isinstance(own, dict) else None
        if scope is None and isinstance(own, dict) and own.get("region") and kind in SCOPE_KINDS:
            declared_share = own.get("share")
            scope = FaultScope(cast(ScopeKind, kind), bool(own.get("removes-serving", True)))
            arguments = {
                "region": own["region"],
                **({"fraction": declared_share} if declared_share else {}),
            }
        if scope is None or "region" not in arguments:
            yield index, name
        else:
            yield PlannedFault(index, name, scope, str(arguments["region"]), dict(arguments))


def extension_scopes(experiment: Experiment) -> JsonObject:
    """The scopes the experiment's aidrill extension declares, by action name."""
    for extension in experiment.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == "aidrill":
            scopes = extension.get("scopes")
            return scopes if isinstance(scopes, dict) else {}
    return {}


def declared_scope(provider: Provider) -> FaultScope | None:
    if provider.get("type") != "python":
        return None
    try:
        module = importlib.import_module(str(provider.get("module")))
    except ImportError:
        return None
    function = getattr(module, str(provider.get("func")), None)
    return scope_of(function) if callable(function) else None


def check_blast_radius(
    experiment: Experiment, plan: Plan, full_outage: bool, file: str | None = None
) -> list[PlannedFault]:
    """Refuse, before anything runs, a fault beyond the plan's blast-radius limits."""
    limits = plan.blast_radius
    regions = {region.name for region in plan.regions}
    faults: list[PlannedFault] = []
    taken: dict[str, list[tuple[PlannedFault, float]]] = {}  # GPU node share per region
    for item in planned_faults(experiment, plan):
        if not isinstance(item, PlannedFault):
            index, name = item
            foreign = _foreign_context(experiment, plan, index)
            if foreign is not None:
                raise RefusedError(foreign, file=file, field=f"method.{index}")
            raise RefusedError(
                f"fault action {name!r} declares no blast-radius scope: use an aidrill "
                "fault action with a region argument, or declare it in the aidrill "
                f"extension (scopes: {{{name}: {{region: ..., kind: ..., share: ...}}}})",
                file=file,
                field=f"method.{index}",
            )
        if item.region not in regions:
            raise RefusedError(
                f"fault action {item.name!r} targets region {item.region!r}, which the plan "
                f"does not name ({', '.join(sorted(regions))})",
                file=file,
                field=f"method.{item.index}.provider.arguments.region",
            )
        fraction = _node_fraction(item, plan, file)
        if fraction is not None and fraction > limits.max_gpu_node_fraction + 1e-9:
            raise RefusedError(
                f"fault action {item.name!r} would take {fraction:.0%} of the GPU nodes of "
                f"{item.region}; the plan allows at most {limits.max_gpu_node_fraction:.0%}",
                file=file,
                field=f"method.{item.index}.provider.arguments",
            )
        if fraction is not None:
            taken.setdefault(item.region, []).append((item, fraction))
            _check_together(taken[item.region], limits.max_gpu_node_fraction, file)
        if item.scope.kind not in NOT_FAULTS:
            faults.append(item)
    hit = {f.region for f in faults if f.scope.removes_serving}
    if len(hit) > 1 and not (full_outage or limits.allow_both_regions):
        raise RefusedError(
            f"the method takes serving capacity from {' and '.join(sorted(hit))} at once; "
            "declare `full-outage: true` in the aidrill extension if that is the scenario",
            file=file,
            field="method",
        )
    return faults


def _check_together(
    kills: list[tuple[PlannedFault, float]], limit: float, file: str | None
) -> None:
    """Faults of one run add up: their GPU node shares of a region, summed, stay in the
    limit (nodes killed by one fault are not yet back when the next one lands)."""
    total = sum(share for _, share in kills)
    if len(kills) > 1 and total > limit + 1e-9:
        names = " and ".join(repr(fault.name) for fault, _ in kills)
        last = kills[-1][0]
        raise RefusedError(
            f"fault actions {names} together take {total:.0%} of the GPU nodes of "
            f"{last.region}; the plan allows at most {limit:.0%} in one run",
            file=file,
            field=f"method.{last.index}.provider.arguments",
        )


def _node_fraction(fault: PlannedFault, plan: Plan, file: str | None) -> float | None:
    if fault.scope.kind == "region":
        return None
    if fault.scope.kind != "gpu-nodes":
        return None
    for key, size in (("fraction", 1), ("count", plan.lab.nodes_per_region)):
        value = fault.arguments.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ExperimentError(
                f"fault action {fault.name!r}: {key} must be a number, got {value!r}",
                file=file,
                field=f"method.{fault.index}.provider.arguments.{key}",
            )
        return float(value) / size
    return None


_TOUCHES = {
    "region": "all of {region}: its GPU nodes, its load balancer and every data tier",
    "gpu-nodes": "{share} of {region}'s GPU nodes",
    "gpu-capacity": "{region}'s free GPU capacity (no running node is touched)",
    "feature-store": "the feature store in {region}",
    "replication": "cross-region replication out of {region} (data waits, nothing is removed)",
    "vector-index": "the vector index of {region}",
    "model-artifacts": "the live model artifact in {region}'s store",
    "model-registry": "the model registry of {region} (its database or its production alias)",
    "storage": "{region}'s artifact store, slowed (nothing is removed)",
    "network": "one network path toward {region}, degraded (nothing is removed)",
    "recovery": "a recovery step in {region} (takes nothing away)",
    "setup": "a safeguard switched on in {region} before the fault (takes nothing away)",
}


def describe_fault(fault: PlannedFault, plan: Plan) -> str:
    """What a fault really touches, in words an auditor reads on the report."""
    share = "some"
    fraction = fault.arguments.get("fraction")
    count = fault.arguments.get("count")
    size = plan.lab.nodes_per_region
    if isinstance(fraction, int | float) and not isinstance(fraction, bool):
        share = f"{fraction:.0%} ({max(1, round(size * fraction))} of {size})"
    elif isinstance(count, int) and not isinstance(count, bool):
        share = f"{count / size:.0%} ({count} of {size})"
    return f"{fault.name}: " + _TOUCHES[fault.scope.kind].format(region=fault.region, share=share)


def _foreign_context(experiment: Experiment, plan: Plan, index: int) -> str | None:
    """Why a known driver action has no region, as its kind of target says (for
    Kubernetes: the kube context it will use is none of the plan's clusters)."""
    method = experiment.get("method") or []
    activity = method[index] if index < len(method) else None
    provider = activity.get("provider") if isinstance(activity, dict) else None
    if not isinstance(provider, dict):
        return None
    kind = kind_of_driver(str(provider.get("module", "")))
    reason = kind.why_no_region(experiment, provider, plan) if kind and kind.why_no_region else None
    return f"fault action {activity.get('name')!r}: {reason}" if reason else None  # type: ignore[union-attr]


def describe_limits(plan: Plan, full_outage: bool) -> str:
    limits = plan.blast_radius
    both = (
        "allowed: the experiment declares full-outage"
        if full_outage
        else "allowed by the plan"
        if limits.allow_both_regions
        else "refused (full-outage not declared)"
    )
    return (
        f"plan limits: at most {limits.max_gpu_node_fraction:.0%} of a region's GPU nodes in "
        f"one run; a whole region only through a region fault; both regions at once {both}"
    )
