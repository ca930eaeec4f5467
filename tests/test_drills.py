"""Real drills: `aidrill run` and plain `chaos run` against a live lab, under real Locust.

The measured inference RTO must agree with the lab's ground truth (fault injected →
serving capacity restored) within one bucket plus the health-check (probe) interval;
test_demo.py checks that for gpu-node-loss and region-failover, this file for plain
`chaos run`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from aidrill._redact import REDACTED
from aidrill.lab import LabClient
from aidrill.plan import load_plan

from ._drill import ENV_SECRET, SECRET_ENV_VAR, SECRET_VALUES, write_secretive_experiment
from .conftest import PLAN

_SETTINGS = load_plan(PLAN)
TOLERANCE = _SETTINGS.slo.bucket + _SETTINGS.lab.health_interval


def _runs(workspace: Path) -> dict[str, Path]:
    return {
        path.name.split("-", 1)[1]: path
        for path in sorted((workspace / "reports" / "runs").iterdir())
    }


def _result(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "result.json").read_text())


def _inference(result: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in result["components"] if c["tier"] == "inference")


def _assert_self_contained(page: str) -> None:
    assert "<svg" in page, "the chart is inline SVG"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "fetches nothing"
    assert "<script" not in page and "<link" not in page


def _assert_agrees_with_ground_truth(result: dict[str, Any]) -> None:
    measured = _inference(result)["achieved"]["rto_seconds"]
    truth = result["ground_truth"]["rto_seconds"]
    assert isinstance(measured, float) and isinstance(truth, float)
    assert abs(measured - truth) <= TOLERANCE, (measured, truth)


def test_plain_chaos_run_executes_the_same_experiment_and_leaks_no_secret(
    workspace: Path, lab: LabClient
) -> None:
    """gpu-node-loss under `chaos run`, with secrets the experiment echoes: chaos's own
    journal.json and its DEBUG chaostoolkit.log must not hold them either."""
    name = write_secretive_experiment(workspace, "secretive-gpu-node-loss.yaml")
    chaos = Path(sys.executable).with_name("chaos")
    env = {**os.environ, "AIDRILL_STATE_DIR": str(lab.state_dir), SECRET_ENV_VAR: ENV_SECRET}
    done = subprocess.run(
        [str(chaos), "--no-version-check", "run", name],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = list((workspace / "reports" / "runs").iterdir())
    assert len(runs) == 1
    result = _result(runs[0])
    assert _inference(result)["verdict"] == "met", _inference(result)
    _assert_agrees_with_ground_truth(result)
    journal = workspace / "journal.json"
    assert journal.exists(), "chaos writes its own journal as usual"
    outputs = [journal, workspace / "chaostoolkit.log", *runs[0].iterdir()]
    for path in outputs:
        text = path.read_text(errors="replace")
        for secret in SECRET_VALUES:
            assert secret not in text, f"{secret} leaked into {path.name}"
    echoed = json.loads(journal.read_text())["run"][:3]
    assert [r["output"] for r in echoed] == [REDACTED] * 3, "outputs were there, redacted"
    assert "succeeded with '" + REDACTED in (workspace / "chaostoolkit.log").read_text()
    assert SECRET_VALUES[2] not in done.stdout + done.stderr
    assert lab.status()["faults"] == []
