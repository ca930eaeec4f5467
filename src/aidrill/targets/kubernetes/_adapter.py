"""Kubernetes clusters (one per region) as a target, through the Kubernetes API and the
plan's endpoints only.

Each region names its kube context; every context and namespace a run touches must be
in the plan's allow-list, checked before any write and again at injection. Nominal
means: every GPU node (the plan's GPU label) is Ready, schedulable and offers its GPUs;
the inference Deployment of each region has all its replicas available (the primary's
at least one); the global endpoint serves from the primary (active-passive); and every
data tier answers. The official client reads ``KUBECONFIG`` as chaostoolkit-kubernetes
does, so the same code drills a real cluster and the lab's Kubernetes twin.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chaoslib import substitute
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from aidrill._event import Event
from aidrill._http import HttpClient
from aidrill._json import Configuration, Provider
from aidrill.errors import CloudError, ProbeSetError, RefusedError
from aidrill.plan import KubernetesEstate, KubernetesRegion, Plan
from aidrill.probes.sets import CheckOutcome
from aidrill.targets._endpoints import Endpoints
from aidrill.targets._estate import data_problems, estate_endpoints, serving_problems
from aidrill.targets._target import (
    Activity,
    Admission,
    Heal,
    LeftFault,
    Resolved,
    limit_refusals,
    wait_for_nothing_off,
)
from aidrill.targets.kubernetes._context import driver_context
from aidrill.targets.kubernetes._resolve import KUBERNETES_MODULES, resolve_actions

if TYPE_CHECKING:
    from chaoslib.types import Action, Experiment


KubeError = (ApiException, ConfigException, HTTPError, OSError)
GPU_FAULT_ANNOTATION = "aidrill.dev/gpu-fault"
# A pod-level inference fault aidrill's actions mark (kubernetes_actions): the pod stays
# Ready while its inference fails or hangs, as a server whose health check lies does.
INFERENCE_FAULT_ANNOTATION = "aidrill.dev/inference-fault"
TIMEOUT = 10


# The recovery step a cluster event marks (aidrill.measure.recovery_phases): a
# controller acting on the loss, then the replacement pod placed on a node.
_EVENT_STEPS = {
    "SuccessfulCreate": "detect",
    "Killing": "detect",
    "NodeNotReady": "detect",
    "Evicted": "detect",
    "Scheduled": "provision",
}


class KubernetesTarget:
    kind = "kubernetes"

    def __init__(self, plan: Plan) -> None:
        if plan.kubernetes is None:
            raise RefusedError("the plan names no Kubernetes clusters (a kubernetes: section)")
        self.plan = plan
        self.estate: KubernetesEstate = plan.kubernetes
        self._clients: dict[str, client.ApiClient] = {}
        self._experiment: dict[str, Any] = {}
        self.tiers: frozenset[str] | None = None  # the data tiers this run's drill touches

    def focus(self, tiers: frozenset[str]) -> None:
        self.tiers = tiers

    # -- clients and the allow-list ----------------------------------------------------
    def api(self, context: str) -> client.ApiClient:
        """One API client per kube context, from the kubeconfig chaosk8s reads."""
        if context not in self._clients:
            path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
            try:
                self._clients[context] = config.new_client_from_config(
                    config_file=path, context=context
                )
            except (ConfigException, OSError) as exc:
                raise RefusedError(f"kube context {context!r} cannot be loaded: {exc}") from exc
        return self._clients[context]

    def plan_contexts(self) -> set[str]:
        return {r.context for r in self.estate.regions.values()}

    def identify(self, context: str) -> None:
        """The cluster of ``context`` answers (its version); CloudError, one line, when
        its API server cannot be reached or refuses aidrill's credentials."""
        api = self.api(context)
        try:
            client.VersionApi(api).get_code(_request_timeout=5)
        except KubeError as exc:
            raise CloudError(
                f"kube context {context!r}: the API server at {api.configuration.host} "
                f"{_unreachable(exc)}"
            ) from exc

    def core(self, context: str) -> client.CoreV1Api:
        return client.CoreV1Api(self.api(context))

    def apps(self, context: str) -> client.AppsV1Api:
        return client.AppsV1Api(self.api(context))

    def region_of(self, context: str | None) -> str | None:
        return next((n for n, r in self.estate.regions.items() if r.context == context), None)

    def allow_refusals(self, contexts: set[str], namespaces: set[str]) -> list[str]:
        """Every context and namespace outside the plan's allow-list."""
        allow = self.plan.allow
        found = []
        refused = sorted(c for c in contexts if c not in allow.kubernetes_contexts)
        if refused:
            found.append(
                f"kube context {', '.join(refused)} is not in the plan's allow-list "
                f"(allow.kubernetes_contexts: {', '.join(allow.kubernetes_contexts) or 'none'})"
            )
        refused = sorted(n for n in namespaces if n not in allow.kubernetes_namespaces)
        if refused:
            found.append(
                f"namespace {', '.join(refused)} is not in the plan's allow-list "
                f"(allow.kubernetes_namespaces: {', '.join(allow.kubernetes_namespaces) or 'none'})"
            )
        return found

    def check_allowed(self, contexts: set[str], namespaces: set[str]) -> None:
        """Refuse (before any write) a context or namespace the plan does not allow."""
        refusals = self.allow_refusals(contexts, namespaces)
        if refusals:
            raise RefusedError("; ".join(refusals))

    def touched(self, experiment: Experiment) -> tuple[set[str], set[str]]:
        """Every kube context and namespace the experiment's Kubernetes activities use."""
        from chaoslib.configuration import load_configuration

        configuration = load_configuration(dict(experiment.get("configuration") or {}))
        contexts: set[str] = set()
        namespaces: set[str] = set()
        for activity in _activities(experiment):
            provider = activity.get("provider") or {}
            if not str(provider.get("module", "")).startswith(KUBERNETES_MODULES):
                continue
            context = driver_context(experiment, provider)
            if context is None:
                raise RefusedError(
                    f"{activity.get('name')!r}: no kube context (no KUBECONFIG, no "
                    "KUBERNETES_CONTEXT, no current-context)"
                )
            contexts.add(context)
            namespaces |= activity_namespaces(provider, configuration)
        return contexts, namespaces

    # -- nominal --------------------------------------------------------------------
    def problems(self) -> list[str]:
        found: list[str] = []
        for region in self.plan.regions:
            cluster = self.estate.regions[region.name]
            serving = region.role == "primary" or self.plan.topology == "active-active"
            try:
                found += self._node_problems(cluster)
                found += self._deployment_problems(cluster, serving)
                found += [
                    f"{cluster.context}: pod {pod.metadata.name} has an inference fault marked"
                    for pod in self._marked_pods(cluster)
                ]
            except KubeError as exc:
                found.append(f"{cluster.context} does not answer: {_reason(exc)}")
        endpoints = self.endpoints()
        http = HttpClient(endpoints.http)
        found += serving_problems(self.plan, self.estate, http)
        found += data_problems(endpoints, http, self.tiers)
        return found

    def gpu_nodes(self, context: str) -> list[Any]:
        return list(
            self.core(context)
            .list_node(label_selector=self.estate.gpu_label, _request_timeout=TIMEOUT)
            .items
        )

    def _node_problems(self, cluster: KubernetesRegion) -> list[str]:
        found = []
        for node in self.gpu_nodes(cluster.context):
            name = f"{cluster.context}: GPU node {node.metadata.name}"
            if node.spec is not None and node.spec.unschedulable:
                found.append(f"{name} is cordoned")
            allocatable = (node.status.allocatable if node.status else None) or {}
            if str(allocatable.get(self.estate.gpu_resource, "0")) in ("0", ""):
                found.append(f"{name} offers no {self.estate.gpu_resource}")
            conditions = (node.status.conditions if node.status else None) or []
            if not any(c.type == "Ready" and c.status == "True" for c in conditions):
                found.append(f"{name} is not Ready")
        return found

    def _deployment_problems(self, cluster: KubernetesRegion, serving: bool) -> list[str]:
        where = f"{cluster.context}: Deployment {cluster.namespace}/{cluster.deployment}"
        try:
            deployment = self.apps(cluster.context).read_namespaced_deployment(
                cluster.deployment, cluster.namespace, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return [f"{where} does not exist"]
            raise
        wanted = (deployment.spec.replicas if deployment.spec else 0) or 0
        available = (deployment.status.available_replicas if deployment.status else 0) or 0
        found = []
        if serving and wanted < 1:
            found.append(f"{where} wants {wanted} replicas")
        if cluster.replicas is not None and serving and wanted != cluster.replicas:
            found.append(f"{where} wants {wanted} replicas, nominal is {cluster.replicas}")
        if available != wanted:
            found.append(f"{where}: {available} of {wanted} replicas available")
        return found

    def _pods(self, cluster: KubernetesRegion) -> list[Any]:
        return list(
            self.core(cluster.context)
            .list_namespaced_pod(
                cluster.namespace, label_selector=cluster.pod_selector, _request_timeout=TIMEOUT
            )
            .items
        )

    def _marked_pods(self, cluster: KubernetesRegion) -> list[Any]:
        return [
            pod
            for pod in self._pods(cluster)
            if INFERENCE_FAULT_ANNOTATION in (pod.metadata.annotations or {})
        ]

    def health_signals(self) -> dict[str, bool]:
        """What the clusters' health checks claim: each inference pod's Ready condition
        (its readiness probe, as the kubelet reports it through the API)."""
        signals: dict[str, bool] = {}
        for cluster in self.estate.regions.values():
            for pod in self._pods(cluster):
                conditions = (pod.status.conditions if pod.status else None) or []
                ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
                signals[f"{cluster.context}/{pod.metadata.name} Ready"] = ready
        return signals

    def wait_nominal(self) -> list[str]:
        return wait_for_nothing_off(self.problems)

    def heal(self) -> Heal:
        """Uncordon the GPU nodes, clear the GPU faults aidrill marked, and scale each
        serving Deployment back to its nominal replicas; then wait (bounded)."""
        started = time.monotonic()
        before = self.problems()
        contexts = {r.context for r in self.estate.regions.values()}
        namespaces = {r.namespace for r in self.estate.regions.values()}
        self.check_allowed(contexts, namespaces)
        for region in self.plan.regions:
            cluster = self.estate.regions[region.name]
            try:
                self._heal_cluster(cluster, region.role == "primary")
            except KubeError as exc:
                before.append(f"{cluster.context}: heal failed: {_reason(exc)}")
        after = self.wait_nominal()
        return Heal(before, after, [], time.monotonic() - started)

    def _heal_cluster(self, cluster: KubernetesRegion, primary: bool) -> None:
        core = self.core(cluster.context)
        for node in self.gpu_nodes(cluster.context):
            name = node.metadata.name
            if node.spec is not None and node.spec.unschedulable:
                core.patch_node(name, {"spec": {"unschedulable": False}}, _request_timeout=TIMEOUT)
            marked = (node.metadata.annotations or {}).get(GPU_FAULT_ANNOTATION)
            if marked:
                clear_gpu_mark(core, name, marked)
        for pod in self._marked_pods(cluster):
            clear_inference_mark(core, cluster.namespace, pod.metadata.name)
        serving = primary or self.plan.topology == "active-active"
        if serving and cluster.replicas is not None:
            self.apps(cluster.context).patch_namespaced_deployment_scale(
                cluster.deployment, cluster.namespace, {"spec": {"replicas": cluster.replicas}}
            )

    # -- where things are -------------------------------------------------------------
    def endpoints(self) -> Endpoints:
        return replace(estate_endpoints(self.plan, self.estate), health_signals=self.health_signals)

    def ground_truth(self, since: float) -> list[Event]:
        return []  # a cluster keeps no record of what really happened for aidrill

    def faults_left_behind(self) -> list[LeftFault]:
        return []  # a cluster keeps no fault ledger for aidrill: rollbacks undo each fault

    def clear_faults(self) -> list[LeftFault]:
        return []

    def activities(self, since: float) -> list[Activity]:
        """The inference namespaces' events since ``since`` (read-only): pods created,
        scheduled, and a pod that could not be placed (``FailedScheduling``) and why."""
        found: list[Activity] = []
        for region, cluster in self.estate.regions.items():
            source = f"kubernetes events in {cluster.context}/{cluster.namespace}"
            try:
                events = (
                    self.core(cluster.context)
                    .list_namespaced_event(cluster.namespace, _request_timeout=TIMEOUT)
                    .items
                )
            except KubeError as exc:
                found.append(Activity(time.time(), source, "list events", "unreadable", region,
                                      str(exc)))  # fmt: skip
                continue
            for event in events:
                stamp = event.last_timestamp or event.first_timestamp or event.event_time
                at = stamp.timestamp() if stamp is not None else None
                if at is None or at < since:
                    continue
                involved = event.involved_object
                what = f"{(involved.kind or '').lower()} {involved.name or ''}".strip()
                status = "failed" if (event.type or "") == "Warning" else "succeeded"
                found.append(Activity(at, source, f"{event.reason or 'event'} {what}".strip(),
                                      status, region, event.message or "",
                                      _EVENT_STEPS.get(event.reason or "")))  # fmt: skip
            found += self._ready_transitions(region, cluster, since)
        return sorted(found, key=lambda a: a.time)

    def _ready_transitions(
        self, region: str, cluster: KubernetesRegion, since: float
    ) -> list[Activity]:
        """Inference pods that turned Ready since ``since`` (their Ready condition's last
        transition): a replacement that serves, the *load* step of a recovery."""
        source = f"kubernetes pods in {cluster.context}/{cluster.namespace}"
        try:
            pods = self._pods(cluster)
        except KubeError as exc:
            return [Activity(time.time(), source, "list pods", "unreadable", region, str(exc))]
        found = []
        for pod in pods:
            for condition in (pod.status.conditions if pod.status else None) or []:
                stamp = condition.last_transition_time
                if condition.type != "Ready" or condition.status != "True" or stamp is None:
                    continue
                if stamp.timestamp() >= since:
                    found.append(Activity(stamp.timestamp(), source,
                                          f"pod {pod.metadata.name} Ready", "succeeded", region,
                                          "its readiness probe passed", "load"))  # fmt: skip
        return found

    # -- safety -----------------------------------------------------------------------
    def check_injection(
        self, activity: Action, configuration: Configuration, full_outage: bool
    ) -> None:
        """Again at injection: the context the action will use and its namespaces."""
        provider = activity.get("provider") or {}
        if not str(provider.get("module", "")).startswith(KUBERNETES_MODULES):
            return
        context = driver_context(self._experiment, provider)
        if context is None:
            raise RefusedError(f"{activity.get('name')!r}: no kube context to act in")
        self.check_allowed({context}, activity_namespaces(provider, configuration))

    def run_check(self, check: Any) -> CheckOutcome:
        raise ProbeSetError(
            f"check {getattr(check, 'name', check)!r} asks the lab; a Kubernetes probe set "
            "uses inference checks and chaostoolkit-kubernetes probes"
        )

    def resolve(self, experiment: Experiment) -> list[Resolved]:
        return resolve_actions(self, experiment)

    def admit(self, experiment: Experiment) -> Admission:
        self._experiment = experiment
        contexts, namespaces = self.touched(experiment)
        refusals = self.allow_refusals(contexts, namespaces)
        for context in sorted(contexts & self.plan_contexts()):
            self.identify(context)
        try:
            resolved = self.resolve(experiment)
        except KubeError as exc:
            raise CloudError(f"the Kubernetes API refused a read: {_reason(exc)}") from exc
        identity = f"kube context {', '.join(sorted(contexts)) or 'none'}"
        return Admission(identity, resolved, refusals + limit_refusals(resolved))


def activity_namespaces(provider: Provider, configuration: Configuration) -> set[str]:
    """The namespaces a chaosk8s activity names (``ns``, ``pod_namespace``, with the
    configuration substituted); its default ``ns`` is ``default``, as chaosk8s has it."""
    given = provider.get("arguments")
    arguments = substitute(dict(given) if isinstance(given, dict) else {}, configuration, {})
    found = {str(arguments[key]) for key in ("ns", "pod_namespace") if arguments.get(key)}
    module = str(provider.get("module", ""))
    if module.startswith(("chaosk8s.pod", "chaosk8s.deployment")) and "ns" not in arguments:
        found.add("default")
    return found


def clear_inference_mark(core: client.CoreV1Api, namespace: str, pod: str) -> None:
    """Take aidrill's inference fault off a pod (gone already is cleared)."""
    patch = {"metadata": {"annotations": {INFERENCE_FAULT_ANNOTATION: None}}}
    try:
        core.patch_namespaced_pod(pod, namespace, patch, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status != 404:
            raise


def clear_gpu_mark(core: client.CoreV1Api, name: str, marked: str) -> None:
    """Give a node back the GPUs aidrill's fault took (the mark keeps what it offered)."""
    try:
        before = json.loads(marked).get("allocatable") or {}
    except (ValueError, AttributeError):
        before = {}
    if before:
        core.patch_node_status(name, {"status": {"allocatable": before}}, _request_timeout=TIMEOUT)
    core.patch_node(
        name, {"metadata": {"annotations": {GPU_FAULT_ANNOTATION: None}}}, _request_timeout=TIMEOUT
    )


def _activities(experiment: Experiment) -> list[dict[str, Any]]:
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    found = []
    for activity in [
        *(hypothesis.get("probes") or []),
        *(experiment.get("method") or []),
        *(experiment.get("rollbacks") or []),
    ]:
        if isinstance(activity, dict):
            found.append(activity)
    return found


def _unreachable(exc: BaseException) -> str:
    if isinstance(exc, ApiException) and exc.status in (401, 403):
        return f"refuses aidrill's credentials ({exc.status} {exc.reason})"
    if isinstance(exc, ApiException):
        return f"answers {exc.status} {exc.reason}"
    return "does not answer (connection refused or timed out)"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return str(exc)[:200]


__all__ = ["KubernetesTarget"]
