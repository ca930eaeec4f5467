"""SIGINT/SIGTERM during a suite of drills (`aidrill drill`, `aidrill demo`): the drill
running is rolled back, no further drill starts, the summary says what did not run,
and the command exits 128 + the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aidrill.lab import LabClient

from ._drill import events, result, wait_for_event, wait_until, write_experiment
from .conftest import _lab_processes

DRILLS = ("gpu-node-loss.yaml", "region-failover.yaml", "gpu-node-loss.yaml")


def _short_suite(workspace: Path, name: str) -> list[str]:
    """Three drills whose faults are watched for 8 s, as the plan's suite ``name``."""
    paths = []
    for number, source in enumerate(DRILLS, start=1):
        raw = yaml.safe_load((workspace / "experiments" / "lab" / source).read_text())
        raw["method"][-1]["pauses"] = {"after": 8}
        paths.append(write_experiment(workspace, source, f"short-{number}.yaml", **{
            "method": raw["method"], "title": f"short drill {number}",
        }))  # fmt: skip
    plan = yaml.safe_load((workspace / "drplan.yaml").read_text())
    plan["suites"][name] = paths
    (workspace / "drplan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    return paths


def _start(workspace: Path, *args: str, state_dir: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if state_dir is not None:
        env["AIDRILL_STATE_DIR"] = str(state_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "aidrill", *args, "--no-live"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _runs(workspace: Path) -> list[Path]:
    runs = workspace / "reports" / "runs"
    return sorted(runs.glob("*/")) if runs.exists() else []


def _first_run(workspace: Path) -> Path:
    assert wait_until(lambda: bool(_runs(workspace)), 90), "the first drill started"
    return _runs(workspace)[0]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_drill_rolls_it_back_and_ends_the_suite(
    workspace: Path, lab: LabClient, signum: signal.Signals
) -> None:
    _short_suite(workspace, "short")
    process = _start(
        workspace, "drill", "--suite", "short", "--participant", "Ada Lovelace:facilitator",
        state_dir=lab.state_dir,
    )  # fmt: skip
    run_dir = _first_run(workspace)
    wait_for_event(run_dir, "fault_injected", timeout=90)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 128 + signum, stdout + stderr
    assert _runs(workspace) == [run_dir], "no further drill started"
    outcome = result(run_dir)
    assert outcome["status"] == "interrupted"
    assert outcome["rollbacks"] and all(r["status"] == "succeeded" for r in outcome["rollbacks"])
    ada = {"name": "Ada Lovelace", "role": "facilitator", "independent": False}
    assert ada in outcome["participants"]
    text = " ".join(stdout.split())
    assert f"{signum.name}: the suite stopped" in text
    assert "2 drill(s) not run: short drill 2, short drill 3" in text
    assert "Suite short: 1 drill(s)" in text, "the summary of what ran"
    assert wait_until(lambda: lab.problems() == [], 30), "the lab is nominal"


def test_a_signal_between_drills_starts_no_further_drill(workspace: Path, lab: LabClient) -> None:
    _short_suite(workspace, "short")
    process = _start(workspace, "drill", "--suite", "short", state_dir=lab.state_dir)
    first = _first_run(workspace)
    assert wait_until(lambda: (first / "result.json").exists(), 120), "drill 1 finished"
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 143, stdout + stderr
    runs = _runs(workspace)
    assert len(runs) <= 2, "drill 3 never started"
    for run_dir in runs[1:]:
        # The signal may land as drill 2 begins: then it is rolled back at once.
        kinds = [e["kind"] for e in events(run_dir)]
        assert "method_not_run" in kinds or "interrupted" in kinds, kinds
    assert "the suite stopped" in " ".join(stdout.split())
    assert wait_until(lambda: lab.problems() == [], 30), "the lab is nominal"


@pytest.mark.starts_lab
def test_sigterm_during_the_demo_rolls_back_stops_the_lab_and_runs_nothing_more(
    workspace: Path,
) -> None:
    paths = _short_suite(workspace, "lab")
    assert len(paths) == 3
    process = _start(workspace, "demo")
    run_dir = _first_run(workspace)
    wait_for_event(run_dir, "fault_injected", timeout=120)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 143, stdout + stderr
    assert _runs(workspace) == [run_dir]
    outcome = result(run_dir)
    assert all(r["status"] == "succeeded" for r in outcome["rollbacks"])
    assert any(c["check"] == "after the rollbacks" for c in outcome["target_checks"])
    assert "demo stopped by SIGTERM after 1 of 3 drills" in " ".join(stdout.split())
    assert not _lab_processes(workspace / ".aidrill" / "demo"), "the demo stops its lab"
