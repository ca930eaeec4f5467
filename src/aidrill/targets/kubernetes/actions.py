"""Faults chaostoolkit-kubernetes has no action for, for drills on Kubernetes (python
providers: ``module: aidrill.targets.kubernetes.actions``): a GPU fault as the NVIDIA
device plugin reports one, and pod-level faults a readiness probe does not see.

Pod-level (``lie_about_health_in_pods``, ``stick_pods_loading``, rolled back by
``clear_inference_faults``): the pod stays Ready while its inference fails at once (an
engine dead behind a live health endpoint) or hangs (a model stuck loading). The
actions mark the pods with the ``aidrill.dev/inference-fault`` annotation; the lab's
Kubernetes twin applies the mark to the pod's model server. On a real cluster inject
the same fault with a proxy that breaks the inference path and leaves the health path
alone (Chaos Mesh HTTPChaos ``abort`` or ``delay`` on the inference path, or an Istio
fault on its route) and keep ``clear_inference_faults`` as the rollback of the mark.

chaostoolkit-kubernetes has no action for it. After an XID error the device plugin
marks the GPU unhealthy, the node's allocatable ``nvidia.com/gpu`` drops to 0, and the
CUDA processes on it die (their pods are evicted). ``mark_gpus_unhealthy`` makes the
same writes through the Kubernetes API: the node's status, and an eviction per pod
that holds the GPU; it keeps what the node offered in an annotation, from which
``clear_gpu_fault`` (the rollback) restores it. They pick the cluster as chaosk8s
does (``KUBECONFIG``, ``KUBERNETES_CONTEXT`` in the secrets or the environment).

On a real cluster the kubelet re-reports allocatable GPUs from the device plugin
within seconds; there, inject the XID with NVIDIA's tooling (DCGM's error injection)
and keep ``clear_gpu_fault`` as the rollback.
"""

from __future__ import annotations

import json
import time
from typing import Any

from chaosk8s import create_k8s_api_client
from chaoslib.exceptions import ActivityFailed
from kubernetes import client
from kubernetes.client.rest import ApiException

from aidrill._json import Secrets
from aidrill._scope import fault_scope, recovery_action
from aidrill.targets.kubernetes._adapter import (
    GPU_FAULT_ANNOTATION,
    INFERENCE_FAULT_ANNOTATION,
    TIMEOUT,
    clear_gpu_mark,
    clear_inference_mark,
)

__all__ = [
    "clear_gpu_fault",
    "clear_inference_faults",
    "lie_about_health_in_pods",
    "mark_gpus_unhealthy",
    "stick_pods_loading",
]


@fault_scope("gpu-nodes")
def mark_gpus_unhealthy(
    name: str | None = None,
    label_selector: str | None = None,
    count: int = 1,
    pod_label_selector: str | None = None,
    pod_namespace: str | None = None,
    resource: str = "nvidia.com/gpu",
    xid: int = 79,
    secrets: Secrets | None = None,
) -> list[str]:
    """Report the GPUs of ``count`` nodes (the first by name of those selected, and of
    those only the ones running pods of ``pod_label_selector``) unhealthy, and evict
    the pods on them that hold ``resource``. Returns the nodes."""
    core = client.CoreV1Api(create_k8s_api_client(secrets))
    nodes = _select(core, name, label_selector, pod_label_selector, pod_namespace)[:count]
    if not nodes:
        raise ActivityFailed("no node matches the selectors: no GPU fault injected")
    for node in nodes:
        allocatable = dict((node.status.allocatable if node.status else None) or {})
        offered = {resource: allocatable.get(resource, "1")}
        mark = json.dumps({"allocatable": offered, "xid": xid, "at": round(time.time(), 3)})
        annotations = {GPU_FAULT_ANNOTATION: mark}
        core.patch_node(
            node.metadata.name, {"metadata": {"annotations": annotations}}, _request_timeout=TIMEOUT
        )
        core.patch_node_status(
            node.metadata.name,
            {"status": {"allocatable": {resource: "0"}}},
            _request_timeout=TIMEOUT,
        )
        _evict_gpu_pods(core, node.metadata.name, resource)
    return [node.metadata.name for node in nodes]


@recovery_action
def clear_gpu_fault(
    name: str | None = None,
    label_selector: str | None = None,
    secrets: Secrets | None = None,
) -> list[str]:
    """Give every selected node that ``mark_gpus_unhealthy`` marked its GPUs back."""
    core = client.CoreV1Api(create_k8s_api_client(secrets))
    cleared = []
    for node in _select(core, name, label_selector, None, None):
        marked = (node.metadata.annotations or {}).get(GPU_FAULT_ANNOTATION)
        if marked:
            clear_gpu_mark(core, node.metadata.name, marked)
            cleared.append(node.metadata.name)
    return cleared


def _select(
    core: client.CoreV1Api,
    name: str | None,
    label_selector: str | None,
    pod_label_selector: str | None,
    pod_namespace: str | None,
) -> list[Any]:
    query: dict[str, Any] = {"_request_timeout": TIMEOUT}
    if name:
        query["field_selector"] = f"metadata.name={name}"
    if label_selector:
        query["label_selector"] = label_selector
    nodes = sorted(core.list_node(**query).items, key=lambda n: n.metadata.name)
    if pod_label_selector and pod_namespace:
        pods = core.list_namespaced_pod(
            pod_namespace, label_selector=pod_label_selector, _request_timeout=TIMEOUT
        ).items
        hosting = {p.spec.node_name for p in pods if p.spec is not None}
        nodes = [n for n in nodes if n.metadata.name in hosting]
    return nodes


def _evict_gpu_pods(core: client.CoreV1Api, node: str, resource: str) -> None:
    pods = core.list_pod_for_all_namespaces(
        field_selector=f"spec.nodeName={node}", _request_timeout=TIMEOUT
    ).items
    for pod in pods:
        containers = (pod.spec.containers if pod.spec else None) or []
        holds = any(
            resource in ((c.resources.limits if c.resources else None) or {}) for c in containers
        )
        if not holds:
            continue
        eviction = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=pod.metadata.name, namespace=pod.metadata.namespace)
        )
        try:
            core.create_namespaced_pod_eviction(
                pod.metadata.name, pod.metadata.namespace, body=eviction, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 404:  # gone already is what an eviction wants
                raise ActivityFailed(f"cannot evict {pod.metadata.name}: {exc.reason}") from exc


@fault_scope("gpu-nodes")
def lie_about_health_in_pods(
    label_selector: str,
    ns: str = "default",
    qty: int = 1,
    secrets: Secrets | None = None,
) -> list[str]:
    """The engine of ``qty`` pods (the first by name of those selected) dies behind a
    live health endpoint: inference fails at once, the pod stays Ready."""
    return _mark_pods("lying-health", label_selector, ns, qty, secrets)


@fault_scope("gpu-nodes")
def stick_pods_loading(
    label_selector: str,
    ns: str = "default",
    qty: int = 1,
    secrets: Secrets | None = None,
) -> list[str]:
    """``qty`` pods come back Ready with their model still loading: inference hangs."""
    return _mark_pods("stuck-loading", label_selector, ns, qty, secrets)


def clear_inference_faults(
    label_selector: str, ns: str = "default", secrets: Secrets | None = None
) -> list[str]:
    """Rollback: every selected pod serves normally again; the pods cleared."""
    core = client.CoreV1Api(create_k8s_api_client(secrets))
    cleared = []
    for pod in _pods(core, label_selector, ns):
        if INFERENCE_FAULT_ANNOTATION in (pod.metadata.annotations or {}):
            clear_inference_mark(core, ns, pod.metadata.name)
            cleared.append(pod.metadata.name)
    return cleared


def _mark_pods(
    mode: str, label_selector: str, ns: str, qty: int, secrets: Secrets | None
) -> list[str]:
    if qty < 1:
        raise ActivityFailed(f"qty must be at least 1, got {qty}")
    core = client.CoreV1Api(create_k8s_api_client(secrets))
    pods = _pods(core, label_selector, ns)[:qty]
    if not pods:
        raise ActivityFailed(f"no pod matches {label_selector} in {ns}: no fault injected")
    mark = json.dumps({"mode": mode, "at": round(time.time(), 3)})
    for pod in pods:
        core.patch_namespaced_pod(
            pod.metadata.name,
            ns,
            {"metadata": {"annotations": {INFERENCE_FAULT_ANNOTATION: mark}}},
            _request_timeout=TIMEOUT,
        )
    return [pod.metadata.name for pod in pods]


def _pods(core: client.CoreV1Api, label_selector: str, ns: str) -> list[Any]:
    found = core.list_namespaced_pod(
        ns, label_selector=label_selector, _request_timeout=TIMEOUT
    ).items
    return sorted(found, key=lambda p: p.metadata.name)
