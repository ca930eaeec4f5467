"""A Kubernetes estate aidrill did not build, on the kmock-based API emulator (a test
double of a kube-apiserver, spoken to over loopback HTTP by the official client and by
chaostoolkit-kubernetes): its own GPU label, inference Deployment, namespaces and
labels, CPU nodes beside the GPU ones, another team's pods, a cluster the plan does not
allow. Seeded and varied; over every seed and experiment:

- a dry run changes nothing, and exits 2 exactly when the real run is refused;
- every refusal of the real run appears in the dry run;
- a real run changes nothing outside the plan (here: nothing at all, as its steady
  state never holds);
- no output holds a traceback.
"""

from __future__ import annotations

import gc
import json
import random
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from aidrill.cli.main import cli
from aidrill.lab.twins._k8s_api import DEPLOYMENTS, NODES, PODS, ApiServer

from .conftest import REPO

SEEDS = range(3)
LABELS = [("nvidia.com/gpu.present", "true"), ("accelerator", "nvidia-a10g"),
          ("node.kubernetes.io/instance-family", "g5")]  # fmt: skip


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ApiServer]]:
    started = {name: ApiServer(name) for name in ("east", "west")}
    for server in started.values():
        server.start()
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()
        # The runs' Kubernetes clients leave keep-alive connections open to the stopped
        # emulator; their transports and kmock's client session are dropped here, not
        # at the end of the session, where pytest would count their ResourceWarnings.
        started.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def _clear(server: ApiServer) -> None:
    for kind in (NODES, PODS, DEPLOYMENTS):
        for obj in server.call(server.api.live(kind)):
            meta = obj["metadata"]
            server.call(server.api.drop(kind, meta.get("namespace"), meta["name"]))


def _node(name: str, labels: dict[str, str], gpus: int) -> dict[str, Any]:
    ready = [{"type": "Ready", "status": "True"}]
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {}, "status": {"allocatable": {"nvidia.com/gpu": str(gpus)},
                                   "conditions": ready}}  # fmt: skip


def _pod(name: str, namespace: str, node: str, labels: dict[str, str]) -> dict[str, Any]:
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u",
             "controller": True}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels,
                         "ownerReferences": [owner]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}], "volumes": []},
            "status": {"phase": "Running"}}  # fmt: skip


def _deployment(name: str, namespace: str, labels: dict[str, str], replicas: int) -> Any:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"replicas": replicas, "availableReplicas": replicas,
                       "readyReplicas": replicas}}  # fmt: skip


def build_estate(seed: int, servers: dict[str, ApiServer], root: Path) -> dict[str, Any]:
    """A foreign cluster per region for ``seed`` and a plan naming only its inference
    Deployment, its namespace and its GPU label; a kubeconfig with a third context the
    plan does not allow."""
    rng = random.Random(seed)
    team = rng.choice(["acme", "zeta", "orbit", "nimbus"]) + str(seed)
    key, value = LABELS[seed % len(LABELS)]
    namespace, other_ns = f"{team}-serving", f"{team}-batch"
    app = {"app.kubernetes.io/name": f"{team}-llm"}
    gpu_nodes = rng.randint(3, 5)
    for region, server in servers.items():
        _clear(server)
        store = server.api.store
        for n in range(gpu_nodes):
            node = f"{team}-{region}-gpu-{n}"
            server.call(store(NODES, None, _node(node, {key: value, "team": team}, 1)))
            server.call(store(PODS, namespace, _pod(f"{team}-llm-{region}-{n}", namespace,
                                                     node, app)))  # fmt: skip
            # Another team's pod on the same GPU node (a node exporter, say).
            server.call(store(PODS, other_ns, _pod(f"exporter-{region}-{n}", other_ns, node,
                                                   {"app": "exporter"})))  # fmt: skip
        for n in range(rng.randint(1, 3)):
            node = f"{team}-{region}-cpu-{n}"
            server.call(store(NODES, None, _node(node, {"pool": "general", "team": team}, 0)))
            server.call(store(PODS, other_ns, _pod(f"batch-{region}-{n}", other_ns, node,
                                                   {"app": "batch"})))  # fmt: skip
        server.call(store(DEPLOYMENTS, namespace,
                          _deployment(f"{team}-llm", namespace, app, gpu_nodes)))  # fmt: skip
    contexts = {"east": f"{team}-prod-east", "west": f"{team}-prod-west"}
    staging = f"{team}-staging"
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": contexts["east"],
        "clusters": [{"name": r, "cluster": {"server": s.url}} for r, s in servers.items()],
        "users": [{"name": "u", "user": {"token": "stranger-token"}}],
        "contexts": [{"name": c, "context": {"cluster": r, "user": "u"}}
                     for r, c in [*contexts.items(), ("east", staging)]],
    }  # fmt: skip
    (root / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    plan = yaml.safe_load((REPO / "drplan.example.yaml").read_text())
    plan.pop("aws", None)
    plan["target"] = "kubernetes"
    plan["regions"] = [{"name": "east", "role": "primary"}, {"name": "west", "role": "dr"}]
    plan["allow"] = {"targets": ["kubernetes"], "kubernetes_contexts": sorted(contexts.values()),
                     "kubernetes_namespaces": [namespace]}  # fmt: skip
    plan["suites"] = {}
    selector = ",".join(f"{k}={v}" for k, v in app.items())
    plan["kubernetes"] = {
        "inference": "http://127.0.0.1:9",  # nothing answers: a run never passes pre-flight
        "golden-set": "golden.json",
        "gpu-label": f"{key}={value}",
        "regions": {
            region: {"context": contexts[region], "namespace": namespace,
                     "deployment": f"{team}-llm", "pod-selector": selector}
            for region in ("east", "west")
        },
    }  # fmt: skip
    return {"team": team, "namespace": namespace, "other_ns": other_ns, "selector": selector,
            "gpu_label": f"{key}={value}", "staging": staging, "plan": plan,
            "deployment": f"{team}-llm", "gpu_nodes": gpu_nodes}  # fmt: skip


def snapshot(servers: dict[str, ApiServer]) -> dict[str, Any]:
    """What a write would change: nodes (cordon, GPUs, annotations), pods and where they
    run, Deployments' replicas."""
    found: dict[str, Any] = {}
    for region, server in servers.items():
        for kind in (NODES, PODS, DEPLOYMENTS):
            for obj in server.call(server.api.live(kind)):
                meta = obj["metadata"]
                name = f"{region}/{kind.plural}/{meta.get('namespace')}/{meta['name']}"
                found[name] = json.dumps(
                    [obj.get("spec", {}).get(k) for k in ("unschedulable", "replicas", "nodeName")]
                    + [meta.get("annotations"), obj.get("status", {}).get("allocatable")],
                    sort_keys=True,
                )
    return found


_NEVER_HOLDS = {"type": "probe", "name": "never-holds", "tolerance": True,
                "provider": {"type": "python", "module": "os.path", "func": "exists",
                             "arguments": {"path": "/nonexistent/aidrill"}}}  # fmt: skip


def _experiment(name: str, module: str, func: str, arguments: dict[str, Any],
                context: str | None = None) -> dict[str, Any]:  # fmt: skip
    provider: dict[str, Any] = {"type": "python", "module": module, "func": func,
                                "arguments": arguments}  # fmt: skip
    body: dict[str, Any] = {
        "version": "1.0.0", "title": name, "description": "a stranger's drill",
        "extensions": [{"name": "aidrill", "components": ["inference"],
                        "test-type": "component", "target": "kubernetes"}],
        "steady-state-hypothesis": {"title": "never", "probes": [_NEVER_HOLDS]},
        "method": [{"type": "action", "name": name, "provider": provider}],
        "rollbacks": [],
    }  # fmt: skip
    if context:
        body["secrets"] = {"k8s": {"KUBERNETES_CONTEXT": context}}
        provider["secrets"] = ["k8s"]
    return body


def experiments(estate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ns, other, selector = estate["namespace"], estate["other_ns"], estate["selector"]
    gpu = estate["gpu_label"]
    node = "chaosk8s.node.actions"
    pod = "chaosk8s.pod.actions"
    return {
        "drain-one-gpu-node": _experiment("drain-one-gpu-node", node, "drain_nodes", {
            "label_selector": gpu, "pod_label_selector": selector, "pod_namespace": ns,
            "count": 1, "timeout": 5}),
        "drain-every-gpu-node": _experiment("drain-every-gpu-node", node, "drain_nodes", {
            "label_selector": gpu, "timeout": 5}),
        "delete-any-team-node": _experiment("delete-any-team-node", node, "delete_nodes", {
            "label_selector": f"team={estate['team']}", "all": True}),
        "cordon-the-cpu-pool": _experiment("cordon-the-cpu-pool", node, "cordon_node", {
            "label_selector": "pool=general"}),
        "kill-one-inference-pod": _experiment("kill-one-inference-pod", pod, "terminate_pods", {
            "label_selector": selector, "ns": ns, "qty": 1}),
        "kill-another-teams-pods": _experiment("kill-another-teams-pods", pod,
                                               "terminate_pods", {"ns": other, "all": True}),
        "scale-a-typo": _experiment("scale-a-typo", "chaosk8s.deployment.actions",
                                    "scale_deployment", {"name": estate["deployment"] + "x",
                                                         "replicas": 0, "ns": ns}),
        "unresolvable": _experiment("unresolvable", "chaosk8s.crd.actions",
                                    "delete_custom_object", {
                                        "group": "x.io", "version": "v1", "plural": "things",
                                        "name": "a", "ns": ns}),
        "staging-cluster": _experiment("staging-cluster", pod, "terminate_pods", {
            "label_selector": selector, "ns": ns, "qty": 1}, context=estate["staging"]),
    }  # fmt: skip


def flat(text: str) -> str:
    """The output with tables' borders, line breaks and spaces taken out: a cell wraps
    its text wherever the terminal's width falls."""
    return re.sub(r"[\s│┃┏┓┗┛┡┩└┘━─╇┳┻]", "", text)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["run", "--no-live", "--plan", "plan.yaml", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.output,
        result.exception,
    )
    assert "Traceback" not in result.output
    return result.exit_code, flat(result.output)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_stranger_cluster_is_touched_only_where_the_plan_says(
    servers: dict[str, ApiServer], seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    estate = build_estate(seed, servers, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(estate["plan"], sort_keys=False))
    (tmp_path / "golden.json").write_text(json.dumps({"samples": []}))
    decisions = {}
    for name, body in experiments(estate).items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(body, sort_keys=False))
        before = snapshot(servers)
        dry_code, dry = _run("--dry-run", str(path))
        assert snapshot(servers) == before, f"{name}: the dry run changed the cluster"
        assert dry_code in (0, 2), (name, dry)
        real_code, real = _run(str(path))
        assert (real_code == 2) == (dry_code == 2), (name, dry, real)
        assert snapshot(servers) == before, f"{name}: the real run changed the cluster"
        if dry_code == 2:
            for reason in real.split("error:", 1)[-1].split(";"):
                assert reason.split(":")[-1][:40] in dry, (name, reason, dry)
        decisions[name] = (dry_code, dry)
    for admitted in ("drain-one-gpu-node", "kill-one-inference-pod"):
        assert decisions[admitted][0] == 0, (admitted, decisions[admitted][1])
    for refused in ("drain-every-gpu-node", "delete-any-team-node", "cordon-the-cpu-pool",
                    "kill-another-teams-pods", "scale-a-typo", "unresolvable",
                    "staging-cluster"):  # fmt: skip
        assert decisions[refused][0] == 2, (refused, decisions[refused][1])
    assert "node(s)theplandoesnotname" in decisions["delete-any-team-node"][1]
    assert f"{estate['team']}-east-cpu-0" in decisions["cordon-the-cpu-pool"][1]
    assert estate["other_ns"] in decisions["kill-another-teams-pods"][1]
    assert f"didyoumean'{estate['deployment']}'" in decisions["scale-a-typo"][1]
    assert estate["staging"] in decisions["staging-cluster"][1]
    share = f"{100 // estate['gpu_nodes']}%"
    assert share in decisions["drain-one-gpu-node"][1], decisions["drain-one-gpu-node"][1]


def test_an_unreachable_cluster_is_one_line_and_exit_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: dict[str, ApiServer]
) -> None:
    estate = build_estate(5, servers, tmp_path)
    config = yaml.safe_load((tmp_path / "kubeconfig").read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = "http://127.0.0.1:9"
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(estate["plan"], sort_keys=False))
    (tmp_path / "golden.json").write_text(json.dumps({"samples": []}))
    body = experiments(estate)["drain-one-gpu-node"]
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(body))
    for args in (["--dry-run"], []):
        result = CliRunner().invoke(cli, ["run", "--no-live", "--plan", "plan.yaml", *args,
                                          "x.yaml"])  # fmt: skip
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and estate["team"] + "-prod-east" in result.output, result.output


def _event(name: str, namespace: str, kind: str, reason: str, message: str, at: str,
           involved: str) -> dict[str, Any]:  # fmt: skip
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"kind": "Pod", "name": involved, "namespace": namespace},
            "reason": reason, "message": message, "type": kind,
            "firstTimestamp": at, "lastTimestamp": at, "count": 1}  # fmt: skip


def test_a_clusters_events_are_its_activities(
    servers: dict[str, ApiServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the cluster's own automation did, read through its API: a pod it could not
    # place (and why) is a failed activity, one it placed a succeeded one; an event from
    # before the run, or from another team's namespace, is not the run's.
    from datetime import UTC, datetime, timedelta

    from aidrill.lab.twins._k8s_api import EVENTS
    from aidrill.plan import load_plan
    from aidrill.targets.kubernetes._adapter import KubernetesTarget

    estate = build_estate(1, servers, tmp_path)
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(estate["plan"]))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    now = datetime.now(UTC)
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    ns, other = estate["namespace"], estate["other_ns"]
    east = servers["east"]
    why = "0/5 nodes are available: 5 Insufficient nvidia.com/gpu."
    for event in (
        _event("a", ns, "Warning", "FailedScheduling", why, stamp(now), "llm-new"),
        _event("b", ns, "Normal", "Scheduled", "assigned", stamp(now + timedelta(seconds=2)),
               "llm-new-2"),
        _event("c", ns, "Warning", "FailedScheduling", "old", stamp(now - timedelta(hours=1)),
               "llm-old"),
        _event("d", other, "Warning", "BackOff", "not ours", stamp(now), "batch-1"),
    ):  # fmt: skip
        east.call(east.api.store(EVENTS, event["metadata"]["namespace"], event))
    try:
        target = KubernetesTarget(load_plan(tmp_path / "plan.yaml"))
        found = target.activities((now - timedelta(minutes=1)).timestamp())
    finally:
        for name, namespace in (("a", ns), ("b", ns), ("c", ns), ("d", other)):
            east.call(east.api.drop(EVENTS, namespace, name))
    assert [(a.status, a.action, a.region) for a in found] == [
        ("failed", "FailedScheduling pod llm-new", "east"),
        ("succeeded", "Scheduled pod llm-new-2", "east"),
    ], found
    assert found[0].cause == why and estate["namespace"] in found[0].source
