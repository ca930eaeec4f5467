"""The measuring apparatus fails mid-run (issue 22): a part of it is killed with SIGKILL
at a random point of the fault window, against a live lab. Nothing whose series was
lost may read "met"; the run names what stopped and when; every rollback runs and the
lab is nominal afterwards."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from aidrill import _evidence as evidence
from aidrill._run_result import coverage_floors, read_run_inputs, read_tier_evidence
from aidrill.lab import LabClient
from aidrill.measure import Event, evaluate_run

from ._drill import events, result, run_dir_of, wait_for_event, wait_until, write_experiment

PAUSE = 14  # seconds the fault is watched: the kill lands somewhere inside them


def _start(workspace: Path, lab: LabClient, experiment: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AIDRILL_STATE_DIR": str(lab.state_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "aidrill", "run", "--no-live", *args, experiment],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _short(workspace: Path, source: str, name: str) -> str:
    """A shipped drill whose fault is watched for PAUSE seconds."""
    import yaml

    raw = yaml.safe_load((workspace / "experiments" / "lab" / source).read_text())
    raw["method"][-1]["pauses"] = {"after": PAUSE}
    return write_experiment(workspace, source, name, method=raw["method"])


def _kill_inside_the_fault_window(run_dir: Path, find: Any) -> float:
    """SIGKILL the process ``find()`` names at a random instant of the fault window;
    the instant, from the fault."""
    fault = wait_for_event(run_dir, "fault_injected", timeout=90)
    offset = random.uniform(0.5, PAUSE - 3)
    time.sleep(max(0.0, fault["time"] + offset - time.time()))
    victim = find()
    assert victim is not None, "the part to kill is running"
    victim.send_signal(signal.SIGKILL)
    return time.time() - float(fault["time"])


def _children(parent: int, marker: str) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(parent).children(recursive=True):
        try:
            if marker in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def _stops(run_dir: Path) -> list[dict[str, Any]]:
    return [e for e in events(run_dir) if e["kind"] == "apparatus_stopped"]


def _assert_rolled_back_and_nominal(run_dir: Path, lab: LabClient) -> None:
    outcome = result(run_dir)
    assert outcome["rollbacks"] and all(r["status"] == "succeeded" for r in outcome["rollbacks"])
    assert wait_until(lambda: not lab.status()["faults"], 30), "no fault is left behind"
    assert wait_until(lambda: lab.problems() == [], 30), "the lab is nominal afterwards"


def _measured_from_evidence_alone(run_dir: Path, planned: bool = False) -> dict[str, str]:
    """Each component's verdict recomputed from the evidence with every trace of the
    watch removed (no apparatus_stopped, no interruption): the coverage rule by itself
    must not let the lost series read "met". With ``planned``, the window runs to where
    the run would have ended had nothing interrupted it (the fault's whole pause)."""
    plan, extension, _ = read_run_inputs(run_dir)
    assert extension is not None
    kept = [
        e
        for e in evidence.read_events(run_dir)
        if e.kind not in ("apparatus_stopped", "apparatus_interrupt")
    ]
    if planned:
        fault = next(e.time for e in kept if e.kind == "fault_injected")
        kept = [
            e if e.kind != "rollbacks_started" else replace(e, time=fault + PAUSE) for e in kept
        ]
    evaluation = evaluate_run(
        plan,
        extension.components,
        [Event(e.time, e.kind, e.data) for e in kept],
        evidence.read_timeline(run_dir),
        extension.sustain or plan.slo.sustain,
        read_tier_evidence(run_dir, plan),
        min_answers=coverage_floors(plan, extension),
    )
    print("EVIDENCE-ALONE", evaluation.validity, [(c.verdict) for c in evaluation.components])
    return {c.component.name: c.verdict.status for c in evaluation.components}


@pytest.mark.parametrize("workers", [0, 2], ids=["single-locust", "locust-master"])
def test_the_load_killed_mid_fault_makes_the_run_invalid_never_met(
    workspace: Path, lab: LabClient, workers: int
) -> None:
    experiment = _short(workspace, "gpu-node-loss.yaml", f"load-killed-{workers}.yaml")
    args = ("--load-workers", str(workers)) if workers else ()
    process = _start(workspace, lab, experiment, *args)
    run_dir = run_dir_of(workspace)
    load_pid = lambda: int((run_dir / "load.pid").read_text())  # noqa: E731
    killed_at = _kill_inside_the_fault_window(run_dir, lambda: psutil.Process(load_pid()))
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 3, stdout + stderr
    outcome = result(run_dir)
    assert outcome["valid"] is False
    reason = outcome["invalid_reasons"][0]["reason"]
    part = "the load generator's master" if workers else "the load generator"
    assert reason.startswith(f"{part} exited with -9 at +"), reason
    said = float(reason.split(" at +", 1)[1].split(" s", 1)[0])
    assert abs(said - killed_at) < 1.5, (said, killed_at)
    assert all(c["verdict"] == "not measured" for c in outcome["components"]), outcome
    kinds = [e["kind"] for e in events(run_dir)]
    assert kinds.index("apparatus_stopped") < kinds.index("rollbacks_started")
    assert set(_measured_from_evidence_alone(run_dir, planned=True).values()) == {"not measured"}, (
        "had the run gone on blind, its evidence alone would still say nothing"
    )
    _assert_rolled_back_and_nominal(run_dir, lab)


def test_a_lost_worker_is_recorded_and_coverage_decides_what_it_costs(
    workspace: Path, lab: LabClient
) -> None:
    experiment = _short(workspace, "gpu-node-loss.yaml", "worker-killed.yaml")
    process = _start(workspace, lab, experiment, "--load-workers", "2")
    run_dir = run_dir_of(workspace)
    _kill_inside_the_fault_window(run_dir, lambda: _children(process.pid, "--worker")[0])
    process.communicate(timeout=180)
    outcome = result(run_dir)
    assert outcome["valid"] is True, outcome["invalid_reasons"]
    stops = _stops(run_dir)
    assert stops and stops[0]["part"].startswith("load worker") and not stops[0]["fatal"]
    assert stops[0]["how"] == "exited with -9"
    inference = next(c for c in outcome["components"] if c["name"] == "inference")
    if inference["verdict"] == "met":
        # A met stands only on buckets that held enough answers for the whole window.
        assert "coverage_gaps" not in inference["achieved"], inference
    assert _measured_from_evidence_alone(run_dir)["inference"] == inference["verdict"]
    _assert_rolled_back_and_nominal(run_dir, lab)


def test_the_feature_store_canary_writer_killed_leaves_its_component_not_measured(
    workspace: Path, lab: LabClient
) -> None:
    experiment = _short(workspace, "feature-store-failover.yaml", "canary-killed.yaml")
    process = _start(workspace, lab, experiment)
    run_dir = run_dir_of(workspace)
    killed_at = _kill_inside_the_fault_window(
        run_dir, lambda: _children(process.pid, "aidrill.targets._canary_writer")[0]
    )
    stdout, stderr = process.communicate(timeout=180)
    outcome = result(run_dir)
    assert outcome["valid"] is True, "the run itself still tested its fault"
    stop = _stops(run_dir)[0]
    assert stop["part"] == "the feature-store canary writer" and stop["how"] == "exited with -9"
    feature = next(c for c in outcome["components"] if c["name"] == "feature-store")
    assert feature["verdict"] == "not measured", feature
    assert "the feature-store canary writer exited with -9 at +" in feature["explanation"]
    said = feature["explanation"].split("exited with -9 at +", 1)[1].split(" s", 1)[0]
    assert abs(float(said) - killed_at) < 1.5, (said, killed_at)
    assert _measured_from_evidence_alone(run_dir)["feature-store"] != "met"
    assert process.returncode == 1, stdout + stderr  # not everything was met
    _assert_rolled_back_and_nominal(run_dir, lab)
