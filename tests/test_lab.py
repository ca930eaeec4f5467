"""The embedded lab, live on loopback: start, faults, rollbacks, ground truth, stop."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from aidrill.errors import LabError, LabNotRunningError
from aidrill.lab import LabClient, start_lab, stop_lab
from aidrill.lab import actions as lab_actions

from ._drill import wait_until
from .conftest import PLAN, _lab_processes


def _kinds(lab: LabClient, since: float) -> list[str]:
    return [record["kind"] for record in lab.ground_truth(since)]


@pytest.mark.starts_lab
def test_lab_starts_within_fifteen_seconds_and_stops_without_leftovers(tmp_path: Path) -> None:
    started = time.perf_counter()
    client = start_lab(tmp_path, PLAN)
    elapsed = time.perf_counter() - started
    try:
        assert elapsed < 15, f"lab took {elapsed:.1f}s to come up"
        status = client.status()
        assert status["at_capacity"]
        primary, dr = status["regions"]
        assert sum(n["healthy"] for n in primary["nodes"]) == 4
        assert dr["desired"] == 0 and not dr["nodes"], "active-passive: DR region at zero"
        with pytest.raises(LabError, match="already running"):
            start_lab(tmp_path, PLAN)
    finally:
        assert stop_lab(tmp_path)
    assert wait_until(lambda: not _lab_processes(tmp_path), 5)
    with pytest.raises(LabNotRunningError):
        LabClient(tmp_path)


@pytest.mark.starts_lab
def test_active_active_serves_from_both_regions(tmp_path: Path) -> None:
    client = start_lab(tmp_path, PLAN, topology="active-active")
    try:
        status = client.status()
        assert status["nominal_capacity"] == 8
        assert all(len(r["nodes"]) == 4 for r in status["regions"])
    finally:
        stop_lab(tmp_path)


def test_the_lab_and_its_nodes_start_with_the_bounded_allocator(lab: LabClient) -> None:
    """glibc's settings that give large freed buffers back (issue 26) reach the lab's
    supervisor and the processes it starts, unless the caller chose its own."""
    wanted = {"MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_", str(1 << 20))}
    nodes = [n["pid"] for r in lab.status()["regions"] for n in r["nodes"]]
    assert nodes
    for pid in [lab.info.pid, *nodes]:
        environment = psutil.Process(pid).environ()
        assert {key: environment.get(key) for key in wanted} == wanted, pid


def test_killed_gpu_nodes_are_real_crashes_and_are_replaced(lab: LabClient) -> None:
    since = time.time()
    config = {"aidrill_state_dir": str(lab.state_dir)}
    before = {n["pid"] for n in lab.status()["regions"][0]["nodes"]}
    result = lab_actions.kill_gpu_nodes("lab-east", fraction=0.5, configuration=config)
    assert len(result["killed"]) == 2
    assert lab.status()["faults"][0]["kind"] == "kill-nodes"
    rollback = lab_actions.restore_gpu_nodes("lab-east", configuration=config)
    assert rollback["restored"]
    status = lab.status()
    after = {n["pid"] for n in status["regions"][0]["nodes"]}
    assert len(before - after) == 2, "the two killed processes must be gone"
    assert status["faults"] == [], "the rollback clears the fault ledger"
    kinds = _kinds(lab, since)
    assert kinds.count("node_killed") == 2
    assert kinds.index("serving_capacity_lost") < kinds.index("serving_capacity_restored")


def test_region_failure_fails_over_to_the_dr_region(lab: LabClient) -> None:
    since = time.time()
    config = {"aidrill_state_dir": str(lab.state_dir)}
    lab_actions.fail_region("lab-east", configuration=config)
    assert wait_until(lambda: lab.status()["router"]["active"] == "lab-west")
    assert wait_until(lambda: lab.status()["at_capacity"]), "the DR region scales up"
    assert lab_actions.restore_region("lab-east", configuration=config)["restored"]
    status = lab.status()
    assert status["router"]["active"] == "lab-east", "fails back once the primary is whole"
    assert status["regions"][1]["desired"] == 0
    kinds = _kinds(lab, since)
    assert "region_failed" in kinds and "router_switched" in kinds


def test_failover_without_dr_gpu_capacity_never_restores_serving(lab: LabClient) -> None:
    since = time.time()
    config = {"aidrill_state_dir": str(lab.state_dir)}
    lab_actions.exhaust_gpu_capacity("lab-west", configuration=config)
    lab_actions.fail_region("lab-east", configuration=config)
    assert wait_until(lambda: "provisioning_refused" in _kinds(lab, since))
    time.sleep(4)  # longer than the provisioning delay: still nothing may boot
    status = lab.status()
    assert status["serving_capacity"] == 0
    assert not status["regions"][1]["nodes"]
    refused = [r for r in lab.ground_truth(since) if r["kind"] == "provisioning_refused"]
    assert refused[0]["reason"] == "no GPU capacity in region lab-west"
    # The supervisor's activity list (its control API, as an operator sees it) says the
    # same: a failed launch in lab-west, with the reason, and no launch that succeeded.
    west = [a for a in lab.activities(since) if a["region"] == "lab-west"]
    failed = [a for a in west if a["status"] == "failed"]
    assert failed and failed[0]["cause"] == refused[0]["reason"], west
    assert not [a for a in west if a["status"] == "succeeded" and a["kind"] == "launch"], west


def test_reset_clears_faults_left_in_the_ledger(lab: LabClient) -> None:
    config = {"aidrill_state_dir": str(lab.state_dir), "aidrill_run_id": "run-that-died"}
    lab_actions.fail_region("lab-east", configuration=config)
    lab_actions.exhaust_gpu_capacity("lab-west", configuration=config)
    assert len(lab.status()["faults"]) == 2
    result = lab.reset()
    assert result["restored"]
    assert {f["owner"]["run_id"] for f in result["cleared"]} == {"run-that-died"}
    assert lab.status()["faults"] == []


def test_actions_refuse_unknown_regions_and_bad_arguments(lab: LabClient) -> None:
    config = {"aidrill_state_dir": str(lab.state_dir)}
    with pytest.raises(LabError, match="unknown region"):
        lab_actions.fail_region("mars-1", configuration=config)
    with pytest.raises(LabError, match="exactly one of count or fraction"):
        lab_actions.kill_gpu_nodes("lab-east", configuration=config)
    with pytest.raises(LabError, match="fraction"):
        lab_actions.kill_gpu_nodes("lab-east", fraction=1.5, configuration=config)
    assert lab.status()["faults"] == []


def _timed_predicts(lab: LabClient, count: int) -> list[float]:
    import http.client
    import json

    port = int(lab.info.router_url.rsplit(":", 1)[1])
    sample = json.loads(Path(lab.info.golden_set).read_text())["samples"][0]
    body = json.dumps({"entity": sample["entity"], "features": sample["features"]}).encode()
    took = []
    for _ in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        started = time.monotonic()
        conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
        conn.getresponse().read()
        took.append(time.monotonic() - started)
        conn.close()
    return took


def test_a_degraded_network_delays_its_path_and_is_restored(lab: LabClient) -> None:
    config = {"aidrill_state_dir": str(lab.state_dir)}
    baseline = sorted(_timed_predicts(lab, 10))[5]
    lab_actions.degrade_network("lab-east", path="clients", latency="300ms", jitter="50ms",
                                loss=0.0, configuration=config)  # fmt: skip
    lab_actions.degrade_network("lab-west", path="replication", latency="100ms",
                                configuration=config)  # fmt: skip
    degraded = _timed_predicts(lab, 10)
    assert min(degraded) >= 0.25 + baseline * 0.5, (baseline, degraded)
    problems = " ".join(lab.problems())
    assert "toward lab-east is degraded" in problems and "replication link" in problems
    assert lab.data()["features"]["link"]["latency"] == 0.1
    with pytest.raises(LabError, match="replication link leads to the DR region"):
        lab_actions.degrade_network("lab-east", path="replication", configuration=config)
    with pytest.raises(LabError, match="loss must be"):
        lab_actions.degrade_network("lab-east", loss=0.9, configuration=config)
    lab_actions.restore_network("lab-east", configuration=config)
    lab_actions.restore_network("lab-west", configuration=config)
    assert max(_timed_predicts(lab, 5)) < 0.25
    assert lab.problems() == [] and lab.status()["faults"] == []
