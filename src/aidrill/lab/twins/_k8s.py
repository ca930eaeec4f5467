"""The lab's Kubernetes twin: one Kubernetes API per lab region on loopback (kmock's
emulator, a test double), mirroring the lab, and a reconciler that applies what
happens there to the real lab processes.

Each cluster has a GPU Node per slot of the region's GPU quota (labelled
``nvidia.com/gpu.present=true``, one ``nvidia.com/gpu`` allocatable), the ``inference``
Deployment (replicas = the region's desired GPU nodes) and a Pod of it per lab worker,
bound to a Node. Every half second the reconciler:

- kills the worker of a Pod deleted or evicted through the API, of a Node deleted, and
  of a Node whose GPUs turned unhealthy (allocatable ``nvidia.com/gpu`` 0: its Pod is
  evicted); a deleted Node is replaced by the node group after the lab's provisioning
  delay;
- places each new worker on a free, schedulable, GPU-healthy Node, and tells the region
  how many more it can place (a cordoned or drained Node gets no worker);
- applies a Deployment scaled through the API to the region's desired nodes, and the
  lab's own scaling (failover) to the Deployment;
- keeps the Deployment's and Pods' status true to the workers;
- applies an inference fault marked on a Pod (``aidrill.dev/inference-fault``, by
  aidrill.targets.kubernetes.actions) to its worker, which stays Ready meanwhile.
"""

from __future__ import annotations

import datetime
import itertools
import json
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import yaml

from aidrill._json import JsonObject
from aidrill.lab._records import NodeSnapshot, TwinInfo
from aidrill.lab.serving._region import Region
from aidrill.lab.twins._k8s_api import (
    DEPLOYMENTS,
    EVENTS,
    NAMESPACES,
    NODES,
    PODS,
    SERVICES,
    ApiServer,
)
from aidrill.lab.twins._kube_objects import (
    condition_true,
    name_of,
    namespace_of,
    section,
)

Record = Callable[..., None]
T = TypeVar("T")
NAMESPACE = "inference"
DEPLOYMENT = "inference"
APP_LABEL = {"app": "inference"}
GPU_LABEL = ("nvidia.com/gpu.present", "true")
GPU_RESOURCE = "nvidia.com/gpu"
_POLL = 0.5
# What aidrill's pod-level actions mark (aidrill.targets.kubernetes._adapter's name for it).
INFERENCE_FAULT = "aidrill.dev/inference-fault"
_REPLICASET = "inference-7f9c6d5b8"
_OWNER: JsonObject = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "name": _REPLICASET,
    "uid": f"rs-{_REPLICASET}",
    "controller": True,
    "blockOwnerDeletion": True,
}


def context_name(region: str) -> str:
    return f"aidrill-{region}"


class _Cluster:
    """One region's API server and what the reconciler remembers of it."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.server = ApiServer(region.name)
        self.serial = itertools.count(1)
        self.bound: dict[str, str] = {}  # lab node -> Node
        self.replacing: list[float] = []  # when the node group registers a replacement
        self.seen_replicas: int | None = None
        self.last_status: JsonObject = {}
        self.faulted: dict[str, str] = {}  # lab node -> the inference fault applied to it

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.server.call(coroutine)


class KubeTwin:
    def __init__(
        self, regions: dict[str, Region], primary: str, record: Record, state_dir: Path
    ) -> None:
        self.clusters = {name: _Cluster(r) for name, r in regions.items()}
        self.primary = primary
        self.record = record
        self.kubeconfig = state_dir / "kubeconfig"
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        for cluster in self.clusters.values():
            cluster.server.start()
            self._seed(cluster)
        self._write_kubeconfig()
        self.reconcile()
        threading.Thread(target=self._loop, daemon=True, name="kube-twin").start()

    def stop(self) -> None:
        self._stopping.set()
        for cluster in self.clusters.values():
            cluster.server.stop()

    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig.resolve())}

    def info(self) -> TwinInfo:
        return {
            "kubeconfig": str(self.kubeconfig.resolve()),
            "contexts": {name: context_name(name) for name in self.clusters},
            "servers": {name: c.server.url for name, c in self.clusters.items()},
            "namespace": NAMESPACE,
            "deployment": DEPLOYMENT,
        }

    def _write_kubeconfig(self) -> None:
        """One context per region; the primary's is current. The token is a dummy: the
        emulator checks none, and it listens on loopback only."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {"name": context_name(n), "cluster": {"server": c.server.url}}
                for n, c in self.clusters.items()
            ],
            "users": [{"name": "aidrill-lab", "user": {"token": "aidrill-lab"}}],
            "contexts": [
                {
                    "name": context_name(n),
                    "context": {
                        "cluster": context_name(n),
                        "user": "aidrill-lab",
                        "namespace": NAMESPACE,
                    },
                }
                for n in self.clusters
            ],
            "current-context": context_name(self.primary),
        }
        tmp = self.kubeconfig.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        tmp.replace(self.kubeconfig)

    # -- objects --------------------------------------------------------------------
    def _seed(self, cluster: _Cluster) -> None:
        api = cluster.server.api
        cluster.call(api.store(NAMESPACES, None, {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE},
            "status": {"phase": "Active"}}))  # fmt: skip
        for _ in range(cluster.region.settings.gpu_quota):
            self._register_node(cluster)
        desired = cluster.region.state.desired
        cluster.call(api.store(DEPLOYMENTS, NAMESPACE, _deployment(desired)))
        cluster.seen_replicas = desired
        cluster.call(api.store(SERVICES, NAMESPACE, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE, "labels": dict(APP_LABEL)},
            "spec": {"selector": dict(APP_LABEL), "ports": [{"port": 80, "targetPort": 8080}],
                     "type": "ClusterIP"}}))  # fmt: skip

    def _register_node(self, cluster: _Cluster) -> str:
        name = f"gpu-{cluster.region.name}-{next(cluster.serial)}"
        cluster.call(cluster.server.api.store(NODES, None, _node(name, cluster.region.name)))
        return name

    # -- the reconciler ---------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.wait(_POLL):
            try:
                self.reconcile()
            except Exception as exc:  # the loop must outlive any one bad round
                traceback.print_exc()
                self.record("kube_twin_error", error=repr(exc)[:300])

    def reconcile(self) -> None:
        with self._lock:
            for cluster in self.clusters.values():
                self._reconcile(cluster)

    def _reconcile(self, cluster: _Cluster) -> None:
        api, region = cluster.server.api, cluster.region
        nodes = {name_of(n): n for n in cluster.call(api.live(NODES))}
        pods = {name_of(p): p for p in cluster.call(api.live(PODS)) if namespace_of(p) == NAMESPACE}
        self._replace_nodes(cluster, nodes)
        self._sync_replicas(cluster)
        workers = {n["name"]: n for n in region.snapshot()["nodes"] if n["alive"]}
        for worker, node in list(cluster.bound.items()):
            pod = _pod_name(worker)
            reason = None
            if worker not in workers:
                cluster.bound.pop(worker)
                if pod in pods:
                    cluster.call(api.drop(PODS, NAMESPACE, pod))
                    pods.pop(pod)
                continue
            if node not in nodes:
                reason = f"its Node {node} was deleted"
            elif not _gpu_healthy(nodes[node]):
                reason = f"the GPUs of Node {node} are unhealthy: its Pod was evicted"
            elif pod not in pods:
                reason = f"its Pod {pod} was deleted or evicted"
            if reason is not None:
                cluster.bound.pop(worker)
                if pod in pods:
                    cluster.call(api.drop(PODS, NAMESPACE, pod))
                    pods.pop(pod)
                region.kill_node(worker, reason)
                workers.pop(worker)
        taken = set(cluster.bound.values())
        free = [n for n in sorted(nodes, key=_node_order) if n not in taken and _usable(nodes[n])]
        for worker in sorted(workers):
            if worker in cluster.bound:
                continue
            if not free:
                why = f"0/{len(nodes)} nodes are available: no schedulable GPU node free"
                _event(cluster, _pod_name(worker), "Warning", "FailedScheduling", why)
                region.kill_node(worker, "no schedulable GPU node in its cluster")
                continue
            node = free.pop(0)
            cluster.bound[worker] = node
            cluster.call(api.store(PODS, NAMESPACE, _pod(worker, node, workers[worker]["healthy"])))
            assigned = f"Successfully assigned {NAMESPACE}/{_pod_name(worker)} to {node}"
            _event(cluster, _pod_name(worker), "Normal", "Scheduled", assigned)
            pods[_pod_name(worker)] = {}
        region.set_room(len(free))
        self._apply_inference_faults(cluster, pods)
        self._sync_status(cluster, workers, pods)

    def _apply_inference_faults(self, cluster: _Cluster, pods: dict[str, JsonObject]) -> None:
        for worker in list(cluster.bound):
            pod = pods.get(_pod_name(worker)) or {}
            mode = _inference_fault(pod)
            if mode == cluster.faulted.get(worker, "none"):
                continue
            if cluster.region.set_fault_of(worker, {"mode": mode}):
                cluster.faulted[worker] = mode
        for worker in [w for w in cluster.faulted if w not in cluster.bound]:
            del cluster.faulted[worker]

    def _replace_nodes(self, cluster: _Cluster, nodes: dict[str, JsonObject]) -> None:
        """The node group keeps the cluster at the region's GPU quota: a Node deleted is
        replaced after the lab's provisioning delay."""
        now = time.monotonic()
        missing = cluster.region.settings.gpu_quota - len(nodes) - len(cluster.replacing)
        delay = cluster.region.settings.provisioning_delay
        cluster.replacing += [now + delay] * max(0, missing)
        for due in sorted(cluster.replacing):
            if due <= now:
                cluster.replacing.remove(due)
                name = self._register_node(cluster)
                nodes[name] = _node(name, cluster.region.name)
                self.record("kube_node_registered", region=cluster.region.name, node=name)

    def _sync_replicas(self, cluster: _Cluster) -> None:
        """A scale through the API moves the region; the lab's own scaling (failover,
        failback) moves the Deployment."""
        api, region = cluster.server.api, cluster.region
        found = [
            d
            for d in cluster.call(api.live(DEPLOYMENTS))
            if name_of(d) == DEPLOYMENT and namespace_of(d) == NAMESPACE
        ]
        if not found:
            if region.state.desired:
                region.scale_to(0, f"Deployment {NAMESPACE}/{DEPLOYMENT} was deleted")
            cluster.seen_replicas = None
            return
        wanted = section(found[0], "spec").get("replicas")
        replicas = wanted if isinstance(wanted, int) and not isinstance(wanted, bool) else 0
        if replicas != cluster.seen_replicas:
            cluster.seen_replicas = replicas
            region.scale_to(replicas, "Deployment scaled through the Kubernetes API")
        elif region.state.desired != replicas:
            cluster.call(api.amend(DEPLOYMENTS, NAMESPACE, DEPLOYMENT,
                                   {"spec": {"replicas": region.state.desired}}))  # fmt: skip
            cluster.seen_replicas = region.state.desired

    def _sync_status(
        self, cluster: _Cluster, workers: dict[str, NodeSnapshot], pods: dict[str, JsonObject]
    ) -> None:
        api = cluster.server.api
        for worker in cluster.bound:
            pod = pods.get(_pod_name(worker)) or {}
            healthy = workers[worker]["healthy"]
            if pod and _pod_ready(pod) != healthy:
                cluster.call(api.amend(PODS, NAMESPACE, _pod_name(worker),
                                       {"status": _pod_status(healthy)}))  # fmt: skip
        bound = [w for w in cluster.bound if w in workers]
        ready = sum(1 for w in bound if workers[w]["healthy"])
        status: JsonObject = {
            "replicas": len(bound),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": len(bound),
            "unavailableReplicas": max(0, (cluster.seen_replicas or 0) - ready),
        }
        changed = status != cluster.last_status
        if changed and cluster.call(
            api.amend(DEPLOYMENTS, NAMESPACE, DEPLOYMENT, {"status": status})
        ):
            cluster.last_status = status

    # -- nominal and reset ------------------------------------------------------------
    def problems(self) -> list[tuple[str, str]]:
        """What the clusters show off nominal, each tagged with its lab region."""
        found = []
        for name, cluster in self.clusters.items():
            try:
                nodes = cluster.call(cluster.server.api.live(NODES))
            except Exception as exc:  # a cluster that does not answer is the problem
                found.append((name, f"the Kubernetes API of {name} does not answer: {exc}"))
                continue
            quota = cluster.region.settings.gpu_quota
            if len(nodes) < quota:
                found.append((name, f"{context_name(name)}: {len(nodes)} of {quota} GPU nodes"))
            for node in nodes:
                node_name = name_of(node)
                if section(node, "spec").get("unschedulable"):
                    found.append((name, f"{context_name(name)}: Node {node_name} is cordoned"))
                if not _gpu_healthy(node):
                    found.append(
                        (name, f"{context_name(name)}: Node {node_name} reports no healthy GPU")
                    )
            if cluster.seen_replicas is None:
                found.append((name, f"{context_name(name)}: Deployment {DEPLOYMENT} is missing"))
            found += [
                (name, f"{context_name(name)}: Pod {name_of(p)} has an inference fault")
                for p in cluster.call(cluster.server.api.live(PODS))
                if _inference_fault(p) != "none"
            ]
        return found

    def reset(self) -> None:
        """Undo what was done through the API: uncordon Nodes, clear GPU faults,
        recreate a deleted Deployment (at the region's desired size)."""
        with self._lock:
            for cluster in self.clusters.values():
                api = cluster.server.api
                for node in cluster.call(api.live(NODES)):
                    name = name_of(node)
                    if section(node, "spec").get("unschedulable") or not _gpu_healthy(node):
                        fresh = _node(name, cluster.region.name)
                        repair = {"spec": fresh["spec"], "status": fresh["status"]}
                        cluster.call(api.amend(NODES, None, name, repair))
                for pod in cluster.call(api.live(PODS)):
                    if _inference_fault(pod) != "none":
                        cluster.call(api.amend(PODS, NAMESPACE, name_of(pod), {
                            "metadata": {"annotations": {INFERENCE_FAULT: None}}}))  # fmt: skip
                if cluster.seen_replicas is None:
                    desired = cluster.region.state.desired
                    cluster.call(api.store(DEPLOYMENTS, NAMESPACE, _deployment(desired)))
                    cluster.seen_replicas = desired
                    cluster.last_status = {}
        self.reconcile()


# -- object bodies --------------------------------------------------------------------
def _event(cluster: _Cluster, pod: str, kind: str, reason: str, message: str) -> None:
    """An Event about ``pod``, as the scheduler writes one; the same reason for the same
    pod is one Event, rewritten with the latest time (a cluster dedups them too)."""
    now = datetime.datetime.now(datetime.UTC)
    event: JsonObject = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{pod}.{reason.lower()}", "namespace": NAMESPACE},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": NAMESPACE},
        "reason": reason, "message": message, "type": kind,
        "source": {"component": "default-scheduler"},
        "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "count": 1,
    }  # fmt: skip
    cluster.call(cluster.server.api.store(EVENTS, NAMESPACE, event))


def _node(name: str, region: str) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                GPU_LABEL[0]: GPU_LABEL[1],
                "nvidia.com/gpu.product": "NVIDIA-L4",
                "topology.kubernetes.io/region": region,
                "kubernetes.io/hostname": name,
            },
        },
        "spec": {"unschedulable": False},
        "status": {
            "capacity": {GPU_RESOURCE: "1", "cpu": "8", "memory": "32Gi"},
            "allocatable": {GPU_RESOURCE: "1", "cpu": "8", "memory": "32Gi"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def _container() -> JsonObject:
    return {
        "name": "model-server",
        "image": "aidrill/lab-worker:lab",
        "resources": {"limits": {GPU_RESOURCE: "1"}, "requests": {GPU_RESOURCE: "1"}},
    }


def _deployment(replicas: int) -> JsonObject:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE, "labels": dict(APP_LABEL)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(APP_LABEL)},
            "template": {
                "metadata": {"labels": dict(APP_LABEL)},
                "spec": {"containers": [_container()]},
            },
        },
        "status": {},
    }


def _pod_name(worker: str) -> str:
    return f"{_REPLICASET}-{worker}"


def _pod(worker: str, node: str, healthy: bool) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": _pod_name(worker),
            "namespace": NAMESPACE,
            "labels": dict(APP_LABEL),
            "annotations": {"aidrill.dev/lab-worker": worker},
            "ownerReferences": [_OWNER],
        },
        "spec": {"nodeName": node, "containers": [_container()], "volumes": []},
        "status": _pod_status(healthy),
    }


def _pod_status(healthy: bool) -> JsonObject:
    """A Running pod's status; its Ready condition carries when it last changed (to the
    microsecond here; a kubelet writes whole seconds)."""
    now = datetime.datetime.now(datetime.UTC)
    return {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if healthy else "False",
                        "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}],
    }  # fmt: skip


def _pod_ready(pod: JsonObject) -> bool:
    return condition_true(pod, "Ready")


def _inference_fault(pod: JsonObject) -> str:
    """The fault mode marked on a Pod, or ``none``."""
    mark = section(section(pod, "metadata"), "annotations").get(INFERENCE_FAULT)
    if not isinstance(mark, str) or not mark:
        return "none"
    try:
        return str(json.loads(mark).get("mode") or "none")
    except (ValueError, AttributeError):
        return "none"


def _gpu_healthy(node: JsonObject) -> bool:
    allocatable = section(section(node, "status"), "allocatable")
    return str(allocatable.get(GPU_RESOURCE, "0")) not in ("0", "")


def _usable(node: JsonObject) -> bool:
    ready = condition_true(node, "Ready")
    return ready and _gpu_healthy(node) and not section(node, "spec").get("unschedulable")


def _node_order(name: str) -> tuple[int, str]:
    tail = name.rsplit("-", 1)[-1]
    return (int(tail) if tail.isdigit() else 0, name)
