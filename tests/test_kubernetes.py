"""Drilling Kubernetes with chaostoolkit-kubernetes, rehearsed on the lab's Kubernetes
twin (kmock's emulator over HTTP is each region's API server: a test double)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from aidrill.lab import LabClient

from ._drill import fast_variant, result, run_with_env, truth_recovery_window, twin_env
from .conftest import REPO

K8S_EXPERIMENTS = sorted((REPO / "experiments/kubernetes").glob("*.yaml"))
# Faults a readiness probe does not see: no recovery to measure, a blind time instead.
BLIND = ("lying-health",)
CONTEXTS = ("aidrill-lab-east", "aidrill-lab-west")


@pytest.fixture
def twin(lab: LabClient) -> Iterator[dict[str, str]]:
    """The environment `aidrill lab status --env --twin kubernetes` prints, as a dict."""
    env = twin_env(lab.state_dir, "kubernetes")
    assert Path(env["KUBECONFIG"]).is_file()
    assert env["AIDRILL_PLAN"].endswith("drplan.kubernetes.yaml")
    yield env


def _objects(env: dict[str, str]) -> dict[str, Any]:
    """Every object of both clusters with its resourceVersion: what a write changes."""
    found: dict[str, Any] = {}
    for context in CONTEXTS:
        api = config.new_client_from_config(config_file=env["KUBECONFIG"], context=context)
        v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        for kind, items in (
            ("node", v1.list_node().items),
            ("pod", v1.list_pod_for_all_namespaces().items),
            ("deployment", apps.list_deployment_for_all_namespaces().items),
        ):
            for item in items:
                found[f"{context}/{kind}/{item.metadata.name}"] = item.metadata.resource_version
        api.close()
    return found


_run = run_with_env


def test_every_kubernetes_experiment_validates_and_names_real_functions(
    lab: LabClient, twin: dict[str, str], workspace: Path
) -> None:
    for path in K8S_EXPERIMENTS:
        raw = yaml.safe_load(path.read_text())
        hypothesis = raw["steady-state-hypothesis"]["probes"]
        for activity in hypothesis + raw["method"] + raw.get("rollbacks", []):
            provider = activity["provider"]
            assert provider["module"].startswith(("chaosk8s", "aidrill.")), provider
            module = importlib.import_module(provider["module"])
            assert callable(getattr(module, provider["func"], None)), (path.name, provider)
    done = _run(workspace, twin, "validate", *map(str, K8S_EXPERIMENTS))
    assert done.returncode == 0, done.stdout + done.stderr
    chaos = Path(sys.executable).with_name("chaos")
    for path in K8S_EXPERIMENTS:
        command = [str(chaos), "--no-version-check", "validate", str(path)]
        checked = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dry_run_resolves_selectors_and_changes_no_object(
    lab: LabClient, twin: dict[str, str], workspace: Path
) -> None:
    before = _objects(twin)
    done = _run(workspace, twin, "run", "--dry-run", *map(str, K8S_EXPERIMENTS))
    assert done.returncode == 0, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    # Selectors resolve against the cluster: of the 6 GPU nodes, the 4 running inference.
    assert "up to 1 of 6 GPU nodes in aidrill-lab-east deleted (picked from 4 that match" in text
    assert "2 of 4 pods matching app=inference in aidrill-lab-east/inference terminated" in text
    assert "scaled from 4 to 0 replicas: the region's whole inference tier" in text
    assert "the GPUs of 2 of 6 GPU nodes in aidrill-lab-east reported unhealthy" in text
    assert "nothing was injected" in text
    assert _objects(twin) == before, "a dry run writes nothing"
    assert not (workspace / "reports" / "runs").exists()


def test_a_context_or_namespace_outside_the_allow_list_is_refused_before_any_write(
    lab: LabClient, twin: dict[str, str], workspace: Path
) -> None:
    plan = yaml.safe_load(Path(twin["AIDRILL_PLAN"]).read_text())
    plan["allow"]["kubernetes_contexts"] = ["aidrill-lab-west"]
    (workspace / "other-context.yaml").write_text(yaml.safe_dump(plan))
    plan["allow"]["kubernetes_contexts"] = list(CONTEXTS)
    plan["allow"]["kubernetes_namespaces"] = ["batch"]
    (workspace / "other-namespace.yaml").write_text(yaml.safe_dump(plan))
    before = _objects(twin)
    experiment = str(REPO / "experiments/kubernetes/inference-pods-killed.yaml")
    refused = _run(workspace, twin, "run", "--plan", "other-context.yaml", experiment)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    message = " ".join(refused.stderr.split())
    assert "kube context aidrill-lab-east is not in the plan's allow-list" in message
    refused = _run(workspace, twin, "run", "--plan", "other-namespace.yaml", experiment)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "namespace inference is not in the plan's allow-list" in " ".join(refused.stderr.split())
    assert _objects(twin) == before, "refused before any call that writes"


_WHY_KILLED = {
    "gpu-node-loss": "its Node",
    "gpu-node-drain": "its Pod",
    "inference-pods-killed": "its Pod",
    "gpu-xid-fault": "are unhealthy",
}


@pytest.mark.parametrize("name", [p.stem for p in K8S_EXPERIMENTS if p.stem not in BLIND])
def test_kubernetes_experiments_run_valid_on_the_twin_against_the_labs_truth(
    name: str, lab: LabClient, twin: dict[str, str], workspace: Path
) -> None:
    """Each shipped Kubernetes experiment (its fast variant: see ``fast_variant``) on the
    twin; inference-pods-killed through plain `chaos run`, which drives it unchanged."""
    experiment = fast_variant(workspace, f"experiments/kubernetes/{name}.yaml")
    started = time.time()
    if name == "inference-pods-killed":
        chaos = Path(sys.executable).with_name("chaos")
        done = subprocess.run(
            [str(chaos), "--no-version-check", "run", experiment],
            cwd=workspace, env={**os.environ, **twin}, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    else:
        done = _run(workspace, twin, "run", experiment)
        assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (workspace / "reports/runs").iterdir()
    outcome = result(run_dir)
    assert outcome["valid"] is True, outcome["invalid_reasons"]
    assert outcome["target"] == "kubernetes"
    inference = next(c for c in outcome["components"] if c["tier"] == "inference")
    assert inference["verdict"] == "met", inference
    truth = truth_recovery_window(lab, run_dir)
    measured = inference["achieved"]["rto_seconds"]
    assert truth is not None and truth[0] - 1.0 <= measured <= truth[1] + 1.0, (measured, truth)
    # The twin applied the fault to the real lab processes, for the reason the API gave.
    truth_log = lab.ground_truth(since=started)
    if name in _WHY_KILLED:
        killed = [r for r in truth_log if r["kind"] == "node_killed"]
        assert len(killed) == 2 and all(_WHY_KILLED[name] in r["reason"] for r in killed), killed
    else:
        scaled = [r for r in truth_log if r["kind"] == "region_scaled"]
        assert scaled[0]["region"] == "lab-east" and scaled[0]["desired"] == 0, scaled
    assert lab.problems() == [], "the rollbacks left the lab (and its twin) nominal"
    # The clusters' own events, read through the API during the run, are in the
    # evidence: the replacement pods the scheduler placed.
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    read = [e for e in events if e["kind"] == "target_activity"]
    scheduled = [e for e in read if e["action"].startswith("Scheduled pod ")]
    assert scheduled and all(e["status"] == "succeeded" for e in scheduled), read
    # Where the RTO went: a replacement pod turning Ready ends the load phase, where the
    # lab says the replacement's worker was admitted to rotation.
    phases = inference["achieved"].get("phases") or []
    t_fault = next(e["time"] for e in events if e["kind"] == "fault_injected")
    healthy = [r["time"] for r in truth_log if r["kind"] == "node_healthy"]
    for phase in phases:
        if phase["phase"].split("+")[-1] == "load":
            boundary = t_fault + phase["from_fault_seconds"] + phase["seconds"]
            assert any(abs(t - boundary) <= 1.5 for t in healthy), (phase, healthy)
    if name in ("gpu-node-loss", "gpu-xid-fault"):
        assert "load" in [p["phase"] for p in phases], phases


def test_a_pod_whose_engine_died_stays_ready_and_is_served_blind(
    lab: LabClient, twin: dict[str, str], workspace: Path
) -> None:
    """The pod-level fault on the twin: the pod stays Ready (the health signals aidrill
    polled say so), its worker fails every inference, nothing in the cluster reacts,
    and the rollback clears it."""
    experiment = fast_variant(workspace, "experiments/kubernetes/lying-health.yaml")
    started = time.time()
    done = _run(workspace, twin, "run", experiment)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    (run_dir,) = (workspace / "reports/runs").iterdir()
    outcome = result(run_dir)
    assert outcome["valid"] is True, outcome["invalid_reasons"]
    blind = next(c for c in outcome["components"] if c["tier"] == "inference")["achieved"]["blind"]
    assert blind["detected"] is False and blind["seconds"] == blind["window_seconds"], blind
    assert blind["users_hurt"] is True and blind["over_limit"] is True, blind
    assert blind["health_said_healthy"] >= 0.8, blind
    signals = json.loads((run_dir / "health.jsonl").read_text().splitlines()[-1])["signals"]
    assert any(name.startswith("aidrill-lab-east/") and name.endswith(" Ready") for name in signals)
    # The twin applied the mark to one real worker; the rollback took it off.
    applied = [r for r in lab.ground_truth(since=started) if r["kind"] == "node_fault_set"]
    assert [r["mode"] for r in applied] == ["lying-health", "none"], applied
    assert lab.problems() == [], "the rollback left the lab (and its twin) nominal"
    # The other pod-level fault, through the actions themselves (in a process of their
    # own: the Kubernetes client reads KUBECONFIG when it is imported): stuck loading.
    since = time.time()
    stuck = _action(twin, "stick_pods_loading")
    assert len(stuck) == 1 and _wait_for_truth(lab, since, "stuck-loading"), stuck
    assert _action(twin, "clear_inference_faults") == stuck
    assert _wait_for_truth(lab, since, "none"), lab.ground_truth(since=since)


def _action(env: dict[str, str], func: str) -> Any:
    code = ("import json; from aidrill.targets.kubernetes import actions as k; "
            f"print(json.dumps(k.{func}('app=inference', ns='inference')))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return json.loads(done.stdout)


def _wait_for_truth(lab: LabClient, since: float, mode: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = lab.ground_truth(since=since)
        if any(r["kind"] == "node_fault_set" and r.get("mode") == mode for r in found):
            return True
        time.sleep(0.2)
    return False
