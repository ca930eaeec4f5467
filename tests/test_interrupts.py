"""Signals sent to a real `aidrill run` mid-fault: rollbacks run, nothing is left behind."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import yaml

from aidrill.lab import LabClient

from ._drill import events, result, run_dir_of, start_run, wait_for_event, write_experiment


def _long_action_experiment(workspace: Path) -> str:
    experiment = "region-failover.yaml"
    raw = yaml.safe_load((workspace / "experiments" / "lab" / experiment).read_text())
    method = raw["method"]
    method[0]["provider"]["arguments"]["hold"] = 12
    method[0]["pauses"] = {"after": 30}  # chaoslib would sleep this even when interrupted
    return write_experiment(workspace, experiment, "timed-outage.yaml", method=method)


def _short_failover(workspace: Path) -> str:
    """region-failover watched for 8 s: these tests signal or kill it before then."""
    raw = yaml.safe_load((workspace / "experiments/lab/region-failover.yaml").read_text())
    raw["method"][0]["pauses"] = {"after": 8}
    return write_experiment(workspace, "region-failover.yaml", "short-failover.yaml", **{
        "method": raw["method"],
    })  # fmt: skip


def _short_node_loss(workspace: Path) -> str:
    raw = yaml.safe_load((workspace / "experiments/lab/gpu-node-loss.yaml").read_text())
    raw["method"][0]["pauses"] = {"after": 10}
    return write_experiment(workspace, "gpu-node-loss.yaml", "short-node-loss.yaml", **{
        "method": raw["method"],
    })  # fmt: skip


def outcome_started(run_dir: Path) -> float:
    return float(events(run_dir)[0]["time"])


def _assert_interrupted_and_rolled_back(run_dir: Path, lab: LabClient, name: str) -> None:
    outcome = result(run_dir)
    assert outcome["status"] == "interrupted"
    assert [i["signal"] for i in outcome["interruptions"]] == [name]
    assert outcome["rollbacks"] and all(r["status"] == "succeeded" for r in outcome["rollbacks"])
    kinds = [e["kind"] for e in events(run_dir)]
    assert kinds.index("interrupted") < kinds.index("rollbacks_started")
    assert kinds.index("rollback_ran") < kinds.index("load_stopped")
    journal = (run_dir / "journal.json").read_text()
    assert '"status": "interrupted"' in journal
    status = lab.status()
    assert status["faults"] == [], "the fault ledger is empty"
    truth = [(r["kind"], r.get("region")) for r in lab.ground_truth(outcome_started(run_dir))]
    assert status["at_capacity"], (status, truth)
    assert status["router"]["active"] == "lab-east", truth
    assert "interrupted" in (run_dir / "report.html").read_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_action_rolls_back(
    signum: signal.Signals, workspace: Path, lab: LabClient
) -> None:
    process = start_run(workspace, lab, _long_action_experiment(workspace))
    run_dir = run_dir_of(workspace)
    fault = wait_for_event(run_dir, "fault_started")
    time.sleep(3)
    assert not any(e["kind"] == "fault_action_ended" for e in events(run_dir)), "still acting"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 3, "a fault action cut short is not a fault that was tested"
    assert "rolling back" in stderr
    interrupted = wait_for_event(run_dir, "interrupted", timeout=1)
    assert interrupted["phase"] == "method" and interrupted["time"] > fault["time"]
    _assert_interrupted_and_rolled_back(run_dir, lab, signum.name)
    action = next(e for e in events(run_dir) if e["kind"] == "fault_action_ended")
    assert action["time"] > interrupted["time"], "the signal landed inside the action"
    rollbacks = wait_for_event(run_dir, "rollbacks_started", timeout=1)
    assert rollbacks["time"] - interrupted["time"] < 10, "the 30 s pause after it is skipped"
    outcome = result(run_dir)
    assert outcome["valid"] is False
    assert "interrupted before it completed" in outcome["invalid_reasons"][0]["reason"]
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["run"][0]["activity"]["pauses"] == {"after": 30}, "recorded as written"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_the_pause_rolls_back(
    signum: signal.Signals, workspace: Path, lab: LabClient
) -> None:
    process = start_run(workspace, lab, _short_node_loss(workspace))
    run_dir = run_dir_of(workspace)
    wait_for_event(run_dir, "fault_action_ended")
    time.sleep(2)
    assert not any(
        e["kind"] == "phase" and e["phase"] == "steady-state-after" for e in events(run_dir)
    ), "still pausing after the fault action"
    process.send_signal(signum)
    process.communicate(timeout=120)
    assert process.returncode == 1
    _assert_interrupted_and_rolled_back(run_dir, lab, signum.name)


def test_second_signal_during_rollbacks_is_answered_not_obeyed(
    workspace: Path, lab: LabClient
) -> None:
    process = start_run(workspace, lab, _short_failover(workspace))
    run_dir = run_dir_of(workspace)
    wait_for_event(run_dir, "fault_action_ended")
    process.send_signal(signal.SIGINT)
    wait_for_event(run_dir, "rollbacks_started", timeout=30)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert "rollbacks run; they will finish first" in stderr
    ignored = wait_for_event(run_dir, "signal_ignored", timeout=1)
    assert ignored["signal"] == "SIGTERM"
    _assert_interrupted_and_rolled_back(run_dir, lab, "SIGINT")


def test_sigkill_mid_fault_then_lab_reset_restores_and_marks_aborted(
    workspace: Path, lab: LabClient
) -> None:
    import os
    import subprocess
    import sys

    process = start_run(workspace, lab, _short_failover(workspace))
    run_dir = run_dir_of(workspace)
    wait_for_event(run_dir, "fault_action_ended")
    process.kill()
    process.communicate(timeout=30)
    assert lab.status()["faults"], "the killed run left its fault in the ledger"
    reset = subprocess.run(
        [sys.executable, "-m", "aidrill", "lab", "reset", "--state-dir", str(lab.state_dir)],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert f"marked run {run_dir.name} aborted" in reset.stdout
    status = lab.status()
    assert status["faults"] == [] and status["at_capacity"]
    outcome = result(run_dir)
    assert outcome["status"] == "aborted"
    assert "aidrill lab reset" in outcome["abort_reason"]
    assert outcome["valid"] is False, "its rollbacks never ran"
    assert "Run aborted" in (run_dir / "report.html").read_text()
    load_pid = int((run_dir / "load.pid").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(load_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the killed run's Locust kept running")
