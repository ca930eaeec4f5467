"""What each Kubernetes action of an experiment would touch, counted with read-only
list calls against its cluster (selectors resolved as chaostoolkit-kubernetes will
resolve them), every node and pod they reach, against the plan's limits and names.

A node the plan does not name (without the plan's GPU label, or in no cluster of the
plan) and a pod outside the inference Deployment's namespace and selector are refused,
unless ``allow.resources`` names them; so is a Deployment that is not the plan's. A
Kubernetes action aidrill does not resolve needs its scope declared in the aidrill
extension. ``aidrill run --dry-run`` prints it; a run checks it before anything is
injected."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chaoslib import substitute

from aidrill._arguments import Arguments
from aidrill.experiment import declared_scope, extension_scopes, known_scope
from aidrill.targets._limits import apply_limits
from aidrill.targets._target import Resolved, method_actions, undeclared_action
from aidrill.targets.kubernetes._context import driver_context

if TYPE_CHECKING:
    from chaoslib.types import Experiment

    from aidrill.targets.kubernetes._adapter import KubernetesTarget

# The modules whose actions act on a Kubernetes cluster: chaostoolkit-kubernetes, and
# aidrill's own few (GPU faults) beside it.
KUBERNETES_MODULES = ("chaosk8s", "aidrill.targets.kubernetes.actions")


def resolve_actions(target: KubernetesTarget, experiment: Experiment) -> list[Resolved]:
    from chaoslib.configuration import load_configuration

    configuration = load_configuration(dict(experiment.get("configuration") or {}))
    found = []
    for name, provider in method_actions(experiment):
        func = f"{provider.get('module')}.{provider.get('func')}"
        if not str(provider.get("module", "")).startswith(KUBERNETES_MODULES):
            found.append(Resolved(name, f"{func}: not a Kubernetes action aidrill knows"))
            continue
        context = driver_context(experiment, provider) or "?"
        region = target.region_of(context)
        scope = declared_scope(provider) or known_scope(provider)
        if scope is not None and scope.kind == "recovery":
            touches = f"a recovery step in {context} (takes nothing away)"
            found.append(Resolved(name, touches, region))
            continue
        given = provider.get("arguments")
        substituted = substitute(dict(given) if isinstance(given, dict) else {}, configuration, {})
        arguments = Arguments(substituted, f"action {name!r}")
        resolver = _RESOLVERS.get(str(provider.get("func")))
        if resolver is None:
            found.append(
                undeclared_action(name, func, region, extension_scopes(experiment).get(name))
            )
            continue
        resolved = resolver(_Cluster(target, context), name, arguments)
        if region is None:
            resolved = replace(
                resolved, refused=f"kube context {context!r} is not one of the plan's clusters"
            )
        else:
            resolved = replace(resolved, region=region)
        found.append(resolved)
    return apply_limits(target.plan, experiment, found)


class _Cluster:
    """Read-only questions about one cluster."""

    def __init__(self, target: KubernetesTarget, context: str) -> None:
        self.target = target
        self.context = context
        self.core = target.core(context)
        self.apps = target.apps(context)
        region = target.region_of(context)
        self.inference = target.estate.regions[region] if region is not None else None
        self.allowed = set(target.plan.allow.resources)

    def gpu_node_names(self) -> list[str]:
        return [n.metadata.name for n in self.target.gpu_nodes(self.context)]

    def unnamed_nodes(self, names: list[str]) -> list[str]:
        """Nodes the plan does not name: without its GPU label (or in a cluster that is
        not the plan's), and not in allow.resources."""
        named = set(self.gpu_node_names()) if self.inference is not None else set()
        return [n for n in names if n not in named and n not in self.allowed]

    def node_refusal(self, names: list[str]) -> str | None:
        unnamed = self.unnamed_nodes(names)
        if not unnamed:
            return None
        return (
            f"it would touch {len(unnamed)} node(s) the plan does not name: "
            f"{', '.join(unnamed[:5])}{' …' if len(unnamed) > 5 else ''} (no "
            f"{self.target.estate.gpu_label} label, nor in allow.resources)"
        )

    def pod_refusal(self, namespace: str, pods: list[Any]) -> str | None:
        """Pods outside the plan's inference Deployment (its namespace and selector)."""
        inference = self.inference
        ours: set[str] = set()
        if inference is not None and inference.namespace == namespace:
            ours = {
                p.metadata.name
                for p in self.core.list_namespaced_pod(
                    namespace, label_selector=inference.pod_selector, _request_timeout=10
                ).items
            }
        unnamed = [
            p.metadata.name
            for p in pods
            if p.metadata.name not in ours and p.metadata.name not in self.allowed
        ]
        if not unnamed:
            return None
        return (
            f"it would touch {len(unnamed)} pod(s) outside the plan's inference Deployment: "
            f"{', '.join(unnamed[:5])}{' …' if len(unnamed) > 5 else ''}"
        )

    def nodes(self, arguments: Arguments) -> list[str]:
        """Node names a chaosk8s node action selects from (name and/or label selector,
        then only nodes running pods of ``pod_label_selector``)."""
        node, selector = arguments.text("name"), arguments.text("label_selector")
        listed = self.core.list_node(
            field_selector=f"metadata.name={node}" if node else None,
            label_selector=selector,
            _request_timeout=10,
        )
        names = [n.metadata.name for n in listed.items]
        pod_selector, pod_namespace = (
            arguments.text("pod_label_selector"),
            arguments.text("pod_namespace"),
        )
        if pod_selector and pod_namespace:
            pods = self.core.list_namespaced_pod(
                pod_namespace, label_selector=pod_selector, _request_timeout=10
            ).items
            hosting = {p.spec.node_name for p in pods if p.spec is not None}
            names = [n for n in names if n in hosting]
        return names

    def where(self) -> str:
        return f"{self.context}"


def _node_share(cluster: _Cluster, hit: int) -> tuple[float | None, int]:
    total = len(cluster.gpu_node_names())
    return (hit / total if total else None), total


def _delete_nodes(cluster: _Cluster, name: str, arguments: Arguments) -> Resolved:
    candidates = cluster.nodes(arguments)
    count = arguments.whole("count")
    if arguments.flag("all"):
        hit = len(candidates)
    elif arguments.flag("rand"):
        hit = 1
    else:
        hit = count if count is not None and count >= 1 else 1
    hit = min(hit, len(candidates))
    share, total = _node_share(cluster, hit)
    touches = (
        f"up to {hit} of {total} GPU nodes in {cluster.where()} deleted "
        f"(picked from {len(candidates)} that match: {', '.join(candidates) or 'none'})"
    )
    if not candidates:
        touches = f"no node in {cluster.where()} matches: the action will fail, touching nothing"
    return Resolved(
        name, touches, share=share, refused=cluster.node_refusal(candidates),
        resources=tuple(candidates),
    )  # fmt: skip


def _drain_nodes(cluster: _Cluster, name: str, arguments: Arguments) -> Resolved:
    candidates = cluster.nodes(arguments)
    count = arguments.whole("count")
    hit = min(count, len(candidates)) if count is not None and count >= 1 else len(candidates)
    share, total = _node_share(cluster, hit)
    return Resolved(
        name,
        f"up to {hit} of {total} GPU nodes in {cluster.where()} cordoned and their pods "
        f"evicted (from {', '.join(candidates) or 'no matching node'})",
        share=share,
        refused=cluster.node_refusal(candidates),
        resources=tuple(candidates),
    )


def _cordon(cluster: _Cluster, name: str, arguments: Arguments) -> Resolved:
    candidates = cluster.nodes(arguments)
    return Resolved(
        name,
        f"{len(candidates)} nodes in {cluster.where()} cordoned: running pods stay, new "
        f"ones cannot land ({', '.join(candidates) or 'none'})",
        refused=cluster.node_refusal(candidates),
        resources=tuple(candidates),
    )


def _terminate_pods(cluster: _Cluster, name: str, arguments: Arguments) -> Resolved:
    return _pods_hit(cluster, name, arguments, "terminated")


def _pods_hit(cluster: _Cluster, name: str, arguments: Arguments, what: str) -> Resolved:
    namespace = arguments.text("ns", "default") or "default"
    selector = arguments.text("label_selector")
    pods = cluster.core.list_namespaced_pod(
        namespace, label_selector=selector, _request_timeout=10
    ).items
    pattern = arguments.text("name_pattern")
    if pattern:
        pods = [p for p in pods if re.search(pattern, p.metadata.name)]
    names = [p.metadata.name for p in pods]
    qty = arguments.whole("qty", 1) or 0
    if arguments.flag("all"):
        hit = len(names)
    elif arguments.text("mode") == "percentage":
        hit = min(len(names), math.ceil(qty * len(names) / 100))
    else:
        hit = min(qty, len(names))
    share = _pod_share(cluster, namespace, hit)
    return Resolved(
        name,
        f"{hit} of {len(names)} pods matching {selector or 'everything'} in "
        f"{cluster.where()}/{namespace} {what}",
        share=share,
        refused=cluster.pod_refusal(namespace, pods),
        resources=tuple(f"{namespace}/{n}" for n in names),
    )


def _pod_share(cluster: _Cluster, namespace: str, hit: int) -> float | None:
    """The pods' share of the region's inference replicas, where they are its pods."""
    region = cluster.target.region_of(cluster.context)
    if region is None:
        return None
    inference = cluster.target.estate.regions[region]
    if inference.namespace != namespace:
        return None
    pods = cluster.core.list_namespaced_pod(
        namespace, label_selector=inference.pod_selector, _request_timeout=10
    ).items
    return hit / len(pods) if pods else None


def _scale(cluster: _Cluster, name: str, arguments: Arguments) -> Resolved:
    namespace = arguments.text("ns", "default") or "default"
    deployment = str(arguments.text("name"))
    replicas = arguments.whole("replicas", 0) or 0
    where = f"Deployment {namespace}/{deployment} in {cluster.where()}"
    inference = cluster.inference
    ours = inference is not None and (inference.namespace, inference.deployment) == (
        namespace,
        deployment,
    )
    if not ours and deployment not in cluster.allowed:
        existing = [
            d.metadata.name
            for d in cluster.apps.list_namespaced_deployment(namespace, _request_timeout=10).items
        ]
        near = difflib.get_close_matches(deployment, existing, n=1, cutoff=0.6)
        missing = deployment not in existing
        why = (
            f"no Deployment {deployment!r} in {namespace}"
            + (f" (the closest is {near[0]!r})" if near else "")
            if missing
            else f"{namespace}/{deployment} is not the plan's inference Deployment"
        )
        return Resolved(name, f"{where} scaled to {replicas}", refused=why)
    current = (
        cluster.apps.read_namespaced_deployment_scale(
            deployment, namespace, _request_timeout=10
        ).spec.replicas
        or 0
    )
    if replicas >= current:
        return Resolved(name, f"{where} scaled from {current} to {replicas}: nothing removed")
    share = (current - replicas) / current if current else None
    touches = f"{where} scaled from {current} to {replicas} replicas"
    if replicas == 0:
        touches += ": the region's whole inference tier"
    return Resolved(name, touches, share=share)


def _gpu_fault(cluster: _Cluster, name: str, arguments: Arguments) -> Resolved:
    candidates = cluster.nodes(arguments)
    hit = min(arguments.whole("count", 1) or 0, len(candidates))
    share, total = _node_share(cluster, hit)
    return Resolved(
        name,
        f"the GPUs of {hit} of {total} GPU nodes in {cluster.where()} reported unhealthy "
        f"(allocatable 0) and their GPU pods evicted ({', '.join(candidates[:hit]) or 'none'})",
        share=share,
        refused=cluster.node_refusal(candidates),
        resources=tuple(candidates),
    )


def _lying_pods(cluster: _Cluster, name: str, arguments: Arguments) -> Resolved:
    return _pods_hit(cluster, name, arguments, "fail every inference while they stay Ready")


def _stuck_pods(cluster: _Cluster, name: str, arguments: Arguments) -> Resolved:
    return _pods_hit(cluster, name, arguments, "hang every inference while they stay Ready")


_RESOLVERS = {
    "delete_nodes": _delete_nodes,
    "drain_nodes": _drain_nodes,
    "cordon_node": _cordon,
    "terminate_pods": _terminate_pods,
    "delete_pods": _terminate_pods,
    "scale_deployment": _scale,
    "mark_gpus_unhealthy": _gpu_fault,
    "lie_about_health_in_pods": _lying_pods,
    "stick_pods_loading": _stuck_pods,
}
