"""A Kubernetes cluster per region as a kind of target (entry point ``kubernetes`` in
``aidrill.targets``): the chaostoolkit-kubernetes actions it knows, where they act,
what the plan must name, and the names an experiment may give the estate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aidrill._arguments import Arguments
from aidrill._json import Provider
from aidrill._scope import FaultScope
from aidrill.experiment import unknown_name
from aidrill.kinds import TargetKind
from aidrill.plan import Plan
from aidrill.targets import Target
from aidrill.targets.kubernetes._context import KUBERNETES_MODULES, driver_context

if TYPE_CHECKING:
    from chaoslib.types import Experiment


DRIVERS = {
    "chaosk8s.node.actions.delete_nodes": FaultScope("gpu-nodes", True),
    "chaosk8s.node.actions.drain_nodes": FaultScope("gpu-nodes", True),
    "chaosk8s.node.actions.cordon_node": FaultScope("gpu-capacity", False),
    "chaosk8s.node.actions.uncordon_node": FaultScope("recovery", False),
    "chaosk8s.pod.actions.terminate_pods": FaultScope("gpu-nodes", True),
    "chaosk8s.pod.actions.delete_pods": FaultScope("gpu-nodes", True),
    "chaosk8s.deployment.actions.scale_deployment": FaultScope("region", True),
}


def driver_region(experiment: Experiment, provider: Provider, plan: Plan | None) -> str | None:
    """The plan's region whose cluster is the kube context the action will use."""
    context = driver_context(experiment, provider)
    estate = plan.kubernetes if plan is not None else None
    if estate is None or context is None:
        return None
    return next((n for n, r in estate.regions.items() if r.context == context), None)


def why_no_region(experiment: Experiment, provider: Provider, plan: Plan) -> str | None:
    """The kube context the action will use is none of the plan's clusters."""
    context = driver_context(experiment, provider)
    if context is None or plan.kubernetes is None:
        return None
    known = sorted(r.context for r in plan.kubernetes.regions.values())
    clusters = ", ".join(known)
    return f"it would run in kube context {context!r}, none of the plan's clusters ({clusters})"


def check_plan(plan: Plan) -> list[str]:
    if plan.kubernetes is None:
        return ["target kubernetes: add a kubernetes section naming the clusters"]
    missing = sorted({r.name for r in plan.regions} - set(plan.kubernetes.regions))
    return [f"kubernetes.regions: no cluster for the plan's regions {missing}"] if missing else []


def estate_names(activities: list[tuple[str, str, Arguments]], plan: Plan) -> list[str]:
    """The Deployments and namespaces chaostoolkit-kubernetes activities name."""
    if plan.kubernetes is None:
        return []
    allowed = set(plan.allow.resources)
    regions = plan.kubernetes.regions.values()
    deployments = sorted({r.deployment for r in regions})
    namespaces = sorted({r.namespace for r in regions} | set(plan.allow.kubernetes_namespaces))
    found = []
    for where, module, arguments in activities:
        if not module.startswith("chaosk8s.deployment"):
            continue
        name, namespace = arguments.text("name"), arguments.text("ns")
        if name is not None and name not in deployments and name not in allowed:
            found.append(unknown_name("Deployment", name, deployments, where))
        if namespace is not None and namespace not in namespaces:
            found.append(unknown_name("namespace", namespace, namespaces, where))
    return found


def make_target(plan: Plan, state_dir: Path | None) -> Target:
    from aidrill.targets.kubernetes._adapter import KubernetesTarget

    return KubernetesTarget(plan)


KIND = TargetKind(
    name="kubernetes",
    target=make_target,
    summary="a Kubernetes cluster per region through chaostoolkit-kubernetes",
    drivers=DRIVERS,
    driver_modules=KUBERNETES_MODULES,
    driver_region=driver_region,
    why_no_region=why_no_region,
    check_plan=check_plan,
    estate_names=estate_names,
)
