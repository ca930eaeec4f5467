"""`aidrill demo`, the README's main job, end to end on its own lab."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from aidrill.plan import load_plan
from aidrill.report import Quarter, verify_manifest

from .conftest import PLAN, _lab_processes

_SETTINGS = load_plan(PLAN)
TOLERANCE = _SETTINGS.slo.bucket + _SETTINGS.lab.health_interval


def _inference(result: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in result["components"] if c["tier"] == "inference")


def test_demo_runs_the_three_drills_and_writes_every_report(workspace: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aidrill", "demo"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "quarterly report:" in done.stdout
    runs = {p.name.split("-", 1)[1]: p for p in (workspace / "reports/runs").iterdir()}
    assert set(runs) == {"gpu-node-loss", "region-failover", "region-failover-no-gpu-capacity"}
    for slug in ("gpu-node-loss", "region-failover"):
        result = json.loads((runs[slug] / "result.json").read_text())
        inference = _inference(result)
        assert inference["verdict"] == "met"
        measured = inference["achieved"]["rto_seconds"]
        truth = result["ground_truth"]["rto_seconds"]
        assert abs(measured - truth) <= TOLERANCE, (slug, measured, truth)
    failed = json.loads((runs["region-failover-no-gpu-capacity"] / "result.json").read_text())
    assert _inference(failed)["verdict"] == "missed"
    assert _inference(failed)["cause"] == "no GPU capacity in region lab-west"
    for run_dir in runs.values():
        page = (run_dir / "report.html").read_text()
        assert "<svg" in page, "the chart is inline"
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "fetches nothing"
    index = (workspace / "reports/index.html").read_text()
    assert all(f"runs/{p.name}/report.html" in index for p in runs.values())
    quarter = workspace / "reports" / str(Quarter.current())
    assert (quarter / "report.pdf").exists() and verify_manifest(quarter).ok
    assert not _lab_processes(workspace / ".aidrill" / "demo"), "the demo stops its lab"
