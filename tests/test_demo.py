"""`aidrill demo`, the README's main job, end to end on its own lab."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aidrill.cli.demo import DEMO_EXPERIMENTS
from aidrill.plan import load_plan
from aidrill.report import Quarter, verify_manifest

from .conftest import PLAN, _lab_processes

_SETTINGS = load_plan(PLAN)
TOLERANCE = _SETTINGS.slo.bucket + _SETTINGS.lab.health_interval


def _inference(result: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in result["components"] if c["tier"] == "inference")


DEMO_RUNS = {path.stem for path in DEMO_EXPERIMENTS}


def _component(result: dict[str, Any], tier: str) -> dict[str, Any]:
    return next(c for c in result["components"] if c["tier"] == tier)


def _truth(events_path: Path, kind: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in events_path.read_text().splitlines() if line]
    return [r for r in records if r["kind"] == f"lab:{kind}"]


def _fault_time(events_path: Path) -> float:
    records = [json.loads(line) for line in events_path.read_text().splitlines() if line]
    return float(next(r["time"] for r in records if r["kind"] == "fault_injected"))


@pytest.mark.starts_lab
def test_demo_runs_the_lab_suite_and_writes_every_report(workspace: Path) -> None:
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
    assert set(runs) == DEMO_RUNS
    for slug, run_dir in runs.items():
        outcome = json.loads((run_dir / "result.json").read_text())
        assert outcome["valid"] is True, (slug, outcome["invalid_reasons"])
        checks = [c["check"] for c in outcome["target_checks"]]
        assert checks[0] == "pre-flight" and "after the rollbacks" in checks, (slug, checks)
    assert "Suite lab: 12 drill(s)" in done.stdout and "drills were invalid" not in done.stdout
    # Chaos tests are judged for graceful degradation against the plan's budget.
    chaos = _inference(json.loads((runs["gpu-node-loss"] / "result.json").read_text()))
    assert chaos["degradation"]["status"] in ("absorbed", "degraded gracefully", "not graceful")
    assert chaos["degradation"]["budget"]["max_error_ratio"] == 0.5
    failover = _inference(json.loads((runs["region-failover"] / "result.json").read_text()))
    assert failover["degradation"] is None, "a full-region test is not judged for it"
    for slug in ("gpu-node-loss", "region-failover"):
        result = json.loads((runs[slug] / "result.json").read_text())
        inference = _inference(result)
        assert inference["verdict"] == "met", (slug, inference)
        measured = inference["achieved"]["rto_seconds"]
        truth = result["ground_truth"]["rto_seconds"]
        assert abs(measured - truth) <= TOLERANCE, (slug, measured, truth)
    failed = json.loads((runs["region-failover-no-gpu-capacity"] / "result.json").read_text())
    assert _inference(failed)["verdict"] == "missed"
    assert _inference(failed)["achieved"]["recovered"] is False
    assert _inference(failed)["achieved"]["rto_seconds"] is None
    assert _inference(failed)["cause"] == "no GPU capacity in region lab-west"
    assert "no GPU capacity in region lab-west" in _inference(failed)["explanation"]
    assert failed["deviated"], "the steady state after the method does not hold"
    page = (runs["region-failover-no-gpu-capacity"] / "report.html").read_text()
    assert "not recovered" in page and "no GPU capacity in region lab-west" in page
    _check_data_tiers(runs)
    for run_dir in runs.values():
        page = (run_dir / "report.html").read_text()
        assert "<svg" in page, "the chart is inline"
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "fetches nothing"
    index = (workspace / "reports/index.html").read_text()
    assert all(f"runs/{p.name}/report.html" in index for p in runs.values())
    quarter = workspace / "reports" / str(Quarter.current())
    assert (quarter / "report.pdf").exists() and verify_manifest(quarter).ok
    assert not _lab_processes(workspace / ".aidrill" / "demo"), "the demo stops its lab"


def _check_data_tiers(runs: dict[str, Path]) -> None:
    """RPO and RTO of the stateful tiers, measured from evidence, against ground truth."""
    plan = load_plan(PLAN)
    # Every component of the plan has a measured RTO; stateful ones an RPO too.
    full = json.loads((runs["full-region-failover"] / "result.json").read_text())
    assert {c["name"] for c in full["components"]} == {c.name for c in plan.components}
    for component in full["components"]:
        assert component["achieved"]["rto_seconds"] is not None, component
        if component["target"]["rpo_seconds"] is not None:
            assert isinstance(component["achieved"]["rpo_seconds"], float | int), component
    # Pipelines: the RPO measured from the jobs' published progress agrees with the age
    # of the checkpoint the lab really resumed from (its ground truth) within 0.5 s.
    events_path = runs["full-region-failover"] / "events.jsonl"
    t_fault = _fault_time(events_path)
    for job in ("training", "evaluation"):
        resumed = next(r for r in _truth(events_path, "pipeline_resumed") if r["job"] == job)
        truth = t_fault - resumed["checkpoint_created_at"]
        measured = _component(full, job)["achieved"]["rpo_seconds"]
        assert abs(measured - truth) <= 0.5, (job, measured, truth)
    # The vector index after the region's loss: canary vectors against what the DR
    # region's standby index held when the primary went.
    vector = _component(full, "vector-index")["achieved"]
    assert vector["rpo_detail"]["served_by"] == "lab-west", vector
    standby = _truth(events_path, "vector_index_standby")[0]
    assert abs(vector["rpo_seconds"] - (t_fault - standby["data_as_of"])) <= 0.5, vector

    # Replication paused for D seconds before the primary is lost: RPO = D within 0.5 s.
    lag = json.loads((runs["replication-lag"] / "result.json").read_text())
    events_path = runs["replication-lag"] / "events.jsonl"
    paused = _truth(events_path, "feature_replication_paused")[0]["time"]
    failed = _truth(events_path, "feature_primary_failed")[0]["time"]
    rpo = _component(lag, "feature-store")["achieved"]["rpo_seconds"]
    assert abs(rpo - (failed - paused)) <= 0.5, (rpo, failed - paused)
    assert _component(lag, "feature-store")["rpo_verdict"] == "missed", "8 s over a 5 s target"

    # Vector index: the RPO from canary vectors agrees with the age of the snapshot the
    # lab really restored (its ground truth) within 0.5 s; both paths are timed.
    index = json.loads((runs["vector-index-loss"] / "result.json").read_text())
    events_path = runs["vector-index-loss"] / "events.jsonl"
    restored = _truth(events_path, "vector_index_restored")
    assert [r["method"] for r in restored] == ["snapshot", "rebuild"]
    vector = _component(index, "vector-index")["achieved"]
    truth = _fault_time(events_path) - restored[0]["data_as_of"]
    assert abs(vector["rpo_seconds"] - truth) <= 0.5, (vector["rpo_seconds"], truth)
    assert [e["recovered"] for e in vector["episodes"]] == [True, True]
    assert vector["recall_after_recovery"] >= plan.slo.quality_floor

    # A deleted model version is recovered with 0 versions lost.
    deletion = json.loads((runs["model-artifact-deletion"] / "result.json").read_text())
    artifacts = _component(deletion, "model-artifacts")["achieved"]
    assert artifacts["rpo_detail"]["versions_lost"] == 0
    assert artifacts["recovered"] is True

    # The primary registry lost: the registry changes the RPO counts lost are the ones
    # the lab's ground truth says the restored copy lacks, and the RTO is the outage.
    loss = json.loads((runs["model-registry-loss"] / "result.json").read_text())
    events_path = runs["model-registry-loss"] / "events.jsonl"
    lost = _truth(events_path, "model_registry_lost")[0]
    back = _truth(events_path, "model_registry_restored")[0]
    registry = _component(loss, "model-registry")
    assert registry["verdict"] == "met", registry
    assert (
        registry["achieved"]["rpo_detail"]["versions_lost"] == lost["versions"] - back["versions"]
    )
    outage = back["time"] - lost["time"]
    assert abs(registry["achieved"]["rto_seconds"] - outage) <= TOLERANCE, (registry, outage)
    # The alias moved to the bad candidate: answers are wrong until it moves back, and
    # nothing was lost.
    alias = json.loads((runs["model-alias-bad-version"] / "result.json").read_text())
    assert _component(alias, "model-registry")["achieved"]["rpo_seconds"] == 0
    assert _inference(alias)["achieved"]["impact"] is True
    assert _inference(alias)["verdict"] == "met"

    # Throttled storage slows cold starts, and the inference RTO shows it.
    throttled = json.loads((runs["storage-throttle"] / "result.json").read_text())
    baseline = json.loads((runs["gpu-node-loss"] / "result.json").read_text())
    cold = [r["load_seconds"] for r in throttled["recoveries"] if "load_seconds" in r]
    assert cold and min(cold) > 4.0, cold
    slow = _inference(throttled)["achieved"]["rto_seconds"]
    fast = _inference(baseline)["achieved"]["rto_seconds"]
    assert slow > fast + 3.0, (slow, fast)
