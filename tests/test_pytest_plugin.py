"""The pytest gate: `pytest --aidrill ...` makes each drill a test item, run for real
against a live lab; teams' own tests get the `aidrill_lab` and `aidrill_plan` fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from aidrill.lab import LabClient

from ._drill import make_fast, write_experiment

RUNBOOK_TEST = """
def test_the_lab_is_nominal_for_my_runbook(aidrill_lab, aidrill_plan):
    assert aidrill_lab.problems() == []
    assert aidrill_plan.primary_region == "lab-east"
"""


def _pytest(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # kmock (the test extra's Kubernetes emulator) brings a plugin of its own that
        # needs pytest-asyncio; it has nothing to do with aidrill's.
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:kmock", *args],
        cwd=workspace, env={**os.environ, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip


def test_an_unknown_drill_is_a_usage_error_naming_the_suites(workspace: Path) -> None:
    done = _pytest(workspace, "--aidrill", "nightly")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "no such file, folder or suite" in done.stderr and "gameday, lab" in done.stderr


def test_drills_are_test_items_that_fail_on_a_missed_target(
    workspace: Path, lab: LabClient
) -> None:
    # A plan whose inference RTO no failover can meet: the drill must fail with the
    # verdict, while the team's own test of its runbook passes with the fixtures.
    plan = workspace / "drplan.yaml"
    plan.write_text(plan.read_text().replace("    rto: 20s\n", "    rto: 1s\n", 1))
    (workspace / "test_runbook.py").write_text(RUNBOOK_TEST)
    # Watched long enough to see the recovery and the suite's shorter sustain, no longer.
    raw = make_fast(
        yaml.safe_load((workspace / "experiments/lab/gpu-node-loss.yaml").read_text()),
        "gpu-node-loss",
    )
    raw["method"][0]["pauses"] = {"after": 12}
    experiment = write_experiment(workspace, "gpu-node-loss.yaml", "gpu-node-loss-gate.yaml", **{
        "method": raw["method"], "extension": raw["extensions"][0],
    })  # fmt: skip
    junit = workspace / "junit.xml"
    done = _pytest(
        workspace, "test_runbook.py", "--aidrill", experiment,
        "--aidrill-state-dir", str(lab.state_dir), f"--junitxml={junit}",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout, done.stdout
    assert "inference: missed" in done.stdout, done.stdout
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    drill = next(c for name, c in cases.items() if name and "gpu-node-loss" in name)
    assert drill.find("failure") is not None
    run_dir = next(p.get("value") for p in drill.iter("property") if p.get("name") == "run_dir")
    assert run_dir and (workspace / run_dir / "result.json").is_file()
    assert lab.status()["faults"] == []
