"""The lab's Kubernetes API (kmock's emulator, completed: a test double of Kubernetes),
spoken to by the official client and chaostoolkit-kubernetes over loopback HTTP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from aidrill.lab.twins._k8s_api import (
    DEPLOYMENTS,
    NODES,
    PODS,
    ApiServer,
    parse_label_selector,
    selected,
)


def _node(name: str, gpu: bool) -> dict[str, Any]:
    labels = {"nvidia.com/gpu.present": "true"} if gpu else {"pool": "cpu"}
    allocatable = {"nvidia.com/gpu": "1" if gpu else "0"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {}, "status": {"allocatable": allocatable}}  # fmt: skip


def _pod(name: str, node: str, app: str) -> dict[str, Any]:
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u",
             "controller": True}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "inference", "labels": {"app": app},
                         "ownerReferences": [owner]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}], "volumes": []},
            "status": {"phase": "Running"}}  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    api_server = ApiServer("test")
    api_server.start()
    try:
        yield api_server
    finally:
        api_server.stop()
    assert not api_server.thread.is_alive()


@pytest.fixture
def cluster(server: ApiServer, tmp_path: Path) -> Iterator[client.ApiClient]:
    """Two GPU nodes and a CPU node, an inference pod on each GPU node, a batch pod on
    the CPU node, and the inference Deployment; a kubeconfig pointing at it."""
    for kind, namespace, body in [
        (NODES, None, _node("gpu-1", True)),
        (NODES, None, _node("gpu-2", True)),
        (NODES, None, _node("cpu-1", False)),
        (PODS, "inference", _pod("inference-a", "gpu-1", "inference")),
        (PODS, "inference", _pod("inference-b", "gpu-2", "inference")),
        (PODS, "inference", _pod("batch-a", "cpu-1", "batch")),
        (DEPLOYMENTS, "inference", {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "inference", "namespace": "inference"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "inference"}},
                     "template": {"metadata": {"labels": {"app": "inference"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"replicas": 2, "availableReplicas": 2, "readyReplicas": 2}}),
    ]:  # fmt: skip
        server.call(server.api.store(kind, namespace, body))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server.url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "u"}}]}))  # fmt: skip
    api = config.new_client_from_config(config_file=str(kubeconfig))
    yield api
    api.close()
    for kind in (NODES, PODS, DEPLOYMENTS):
        for obj in server.call(server.api.live(kind)):
            meta = obj["metadata"]
            server.call(server.api.drop(kind, meta.get("namespace"), meta["name"]))


def _names(items: list[Any]) -> list[str]:
    return sorted(item.metadata.name for item in items)


def test_label_and_field_selectors_match_only_what_they_name(cluster: client.ApiClient) -> None:
    v1 = client.CoreV1Api(cluster)
    assert _names(v1.list_node().items) == ["cpu-1", "gpu-1", "gpu-2"]
    assert _names(v1.list_node(label_selector="nvidia.com/gpu.present=true").items) == [
        "gpu-1",
        "gpu-2",
    ]
    assert _names(v1.list_node(label_selector="nvidia.com/gpu.present").items) == ["gpu-1", "gpu-2"]
    assert _names(v1.list_node(label_selector="!nvidia.com/gpu.present").items) == ["cpu-1"]
    assert _names(v1.list_node(label_selector="pool in (cpu,other)").items) == ["cpu-1"]
    assert _names(v1.list_node(label_selector="pool notin (cpu)").items) == ["gpu-1", "gpu-2"]
    assert v1.list_node(label_selector="nvidia.com/gpu.present=false").items == []
    assert _names(v1.list_node(field_selector="metadata.name=gpu-2").items) == ["gpu-2"]
    on_gpu_1 = v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=gpu-1").items
    assert _names(on_gpu_1) == ["inference-a"]
    inference = v1.list_namespaced_pod("inference", label_selector="app=inference,app!=batch")
    assert _names(inference.items) == ["inference-a", "inference-b"]
    for bad in ({"label_selector": "app in (a"}, {"field_selector": "status.podIP=1"}):
        with pytest.raises(ApiException) as refused:
            v1.list_node(**bad)
        assert refused.value.status == 400


def test_selector_parsing_refuses_what_the_api_refuses() -> None:
    requirements = parse_label_selector("a=1, b!=2, c in (x, y), !d, e")
    assert selected({"metadata": {"labels": {"a": "1", "c": "y", "e": ""}}}, requirements, [])
    assert not selected({"metadata": {"labels": {"a": "1", "c": "z", "e": ""}}}, requirements, [])
    assert not selected({"metadata": {"labels": {"a": "1", "c": "x", "d": "", "e": ""}}},
                        requirements, [])  # fmt: skip
    with pytest.raises(Exception, match="unable to parse"):
        parse_label_selector("!a in (b)")


def test_what_chaostoolkit_kubernetes_calls_is_served(
    cluster: client.ApiClient, server: ApiServer
) -> None:
    v1, apps = client.CoreV1Api(cluster), client.AppsV1Api(cluster)
    assert client.VersionApi(cluster).get_code().major == "1"
    node = v1.read_node("gpu-1")
    assert node.metadata.uid and node.metadata.resource_version
    status = v1.delete_node("gpu-2", body=client.V1DeleteOptions())
    assert status.status == "Success"
    assert _names(v1.list_node().items) == ["cpu-1", "gpu-1"]
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="inference-a",
                                                              namespace="inference"))  # fmt: skip
    v1.create_namespaced_pod_eviction("inference-a", "inference", body=eviction)
    with pytest.raises(ApiException) as gone:
        v1.read_namespaced_pod("inference-a", "inference")
    assert gone.value.status == 404
    to_zero = {"spec": {"replicas": 0}}
    scale = apps.patch_namespaced_deployment_scale("inference", "inference", to_zero)
    assert scale.kind == "Scale" and scale.spec.replicas == 0
    assert apps.read_namespaced_deployment("inference", "inference").spec.replicas == 0
    before = int(v1.read_node("gpu-1").metadata.resource_version)
    v1.patch_node("gpu-1", {"spec": {"unschedulable": True}})
    after = v1.read_node("gpu-1")
    assert after.spec.unschedulable is True and int(after.metadata.resource_version) > before


def test_a_watch_sends_what_exists_then_what_changes_and_honours_selectors(
    cluster: client.ApiClient, server: ApiServer
) -> None:
    apps = client.AppsV1Api(cluster)
    seen = []
    stream = watch.Watch()
    for event in stream.stream(
        apps.list_namespaced_deployment,
        namespace="inference",
        field_selector="metadata.name=inference",
        _request_timeout=5,
    ):
        seen.append((event["type"], event["object"].spec.replicas))
        if len(seen) == 1:
            apps.patch_namespaced_deployment("inference", "inference", {"spec": {"replicas": 3}})
        else:
            stream.stop()
    assert seen == [("ADDED", 2), ("MODIFIED", 3)]


def test_a_long_lived_api_keeps_neither_every_request_nor_every_version(
    cluster: client.ApiClient, server: ApiServer
) -> None:
    v1 = client.CoreV1Api(cluster)
    for flag in range(300):
        v1.patch_node("gpu-1", {"spec": {"unschedulable": flag % 2 == 0}})
    server.call(server.api.live(NODES))  # the twin's reads compact histories
    assert len(server.api._requests) <= 64
    key = (NODES, None, "gpu-1")
    assert len(server.api.objects[key].history) == 1


def test_the_lab_runs_without_its_kubernetes_twin_when_kmock_is_absent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """kmock is an extra: without it the lab serves no Kubernetes twin and says why."""
    from aidrill.lab.control import _daemon

    monkeypatch.setitem(sys.modules, "kmock", None)  # `import kmock` fails as if absent
    for name in ("aidrill.lab.twins._k8s", "aidrill.lab.twins._k8s_api"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert _daemon._kube_twin({}, "lab-east", lambda *a, **k: None, tmp_path) is None
    assert "pip install 'aidrill[kubernetes-twin]'" in _daemon.KUBE_TWIN_MISSING
