"""Every shipped lab drill, run once in the suite against a live lab, and checked against
the lab's own record of what happened (measurement never reads that record; tests do).

The short demo (test_demo.py) runs two of the drills as shipped, end to end: their
checks read the demo's runs. The others run here as their fast variants (the same
faults and measurement, a 4 s sustain and windows shortened to match: see
``fast_variant``), so each drill runs exactly once in the whole suite. The twenty
drills as shipped are README's first command.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from aidrill._evidence import read_timeline
from aidrill.cli.demo import DEMO_EXPERIMENTS
from aidrill.lab import LabClient
from aidrill.plan import load_plan

from ._drill import fast_variant, run_aidrill
from .conftest import DEMO_DRILLS, PLAN

_SETTINGS = load_plan(PLAN)
# A measured instant may trail the lab's own by a bucket and a health-check interval.
TOLERANCE = _SETTINGS.slo.bucket + _SETTINGS.lab.health_interval
DRILLS = [path.stem for path in DEMO_EXPERIMENTS]


def _result(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "result.json").read_text())


def _events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _truth(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in _events(run_dir) if r["kind"] == f"lab:{kind}"]


def _fault_time(run_dir: Path) -> float:
    return float(next(r["time"] for r in _events(run_dir) if r["kind"] == "fault_injected"))


def _component(result: dict[str, Any], tier: str) -> dict[str, Any]:
    return next(c for c in result["components"] if c["tier"] == tier)


def _inference(result: dict[str, Any]) -> dict[str, Any]:
    return _component(result, "inference")


def check_every_run(run_dir: Path) -> dict[str, Any]:
    """What holds for every drill: valid, checked before and after, a page that draws
    its charts inline and fetches nothing."""
    result = _result(run_dir)
    assert result["valid"] is True, (run_dir.name, result["invalid_reasons"])
    checks = [c["check"] for c in result["target_checks"]]
    assert checks[0] == "pre-flight" and "after the rollbacks" in checks, checks
    _every_impact_has_phases(result)
    page = (run_dir / "report.html").read_text()
    assert "<svg" in page, "the chart is inline"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "fetches nothing"
    return result


def _every_impact_has_phases(result: dict[str, Any]) -> None:
    """Issue 28's acceptance: every component users saw hurt that recovered has phases
    adding up to its RTO, each naming the evidence that ended it."""
    for component in result["components"]:
        achieved = component["achieved"] or {}
        if not (achieved.get("impact") and achieved.get("rto_seconds") is not None):
            continue
        phases = achieved.get("phases") or []
        assert phases, component
        assert sum(p["seconds"] for p in phases) == pytest.approx(
            achieved["rto_seconds"], abs=0.005), component  # fmt: skip
        assert all(p["evidence"] for p in phases), phases


def _met_near_the_truth(result: dict[str, Any]) -> None:
    inference = _inference(result)
    assert inference["verdict"] == "met", inference
    measured = inference["achieved"]["rto_seconds"]
    truth = result["ground_truth"]["rto_seconds"]
    assert abs(measured - truth) <= TOLERANCE, (measured, truth)


# The lab's ground-truth records that each recovery step's activity (its control API)
# must agree with.
_STEP_TRUTH = {
    "detect": ("node_removed", "node_unhealthy", "node_provisioning", "router_region_down"),
    "provision": ("node_process_started",),
    "load": ("node_healthy",),
}


def _phases_follow_the_truth(run_dir: Path, result: dict[str, Any], every: bool) -> None:
    """The RTO split at the activities the lab's API reported, each boundary where the
    lab's own record says that step happened, the phases adding up to the RTO; with
    ``every``, no step left unknown."""
    inference = _inference(result)
    phases = inference["achieved"]["phases"]
    assert sum(p["seconds"] for p in phases) == pytest.approx(
        inference["achieved"]["rto_seconds"], abs=0.005
    )
    t_fault = _fault_time(run_dir)
    for phase in phases[:-1]:
        step = phase["phase"].split("+")[-1]
        boundary = t_fault + phase["from_fault_seconds"] + phase["seconds"]
        truth = [r["time"] for kind in _STEP_TRUTH[step] for r in _truth(run_dir, kind)]
        # Within a bucket (the recovery instant's resolution) and a health interval.
        assert any(abs(t - boundary) <= TOLERANCE for t in truth), (
            phase, boundary, sorted(truth))  # fmt: skip
    if every:
        assert [p["phase"] for p in phases] == ["detect", "provision", "load", "warm"], phases
    assert "Where inference" in (run_dir / "report.html").read_text()


def _served_nodes_follow_the_truth(run_dir: Path) -> None:
    """The nodes the load's answers name (the lab's node header) are the ones the lab
    says served: a killed node answers nothing a bucket after its death, and each
    replacement's first answers come within a bucket of its admission to rotation."""
    buckets = read_timeline(run_dir)
    t_fault = _fault_time(run_dir)
    before = {n for b in buckets if b.end <= t_fault for n in b.nodes}
    assert before, "the answers name their nodes"
    for killed in _truth(run_dir, "node_killed"):
        late = [b.start for b in buckets if killed["node"] in b.nodes
                and b.start >= killed["time"] + TOLERANCE]  # fmt: skip
        assert not late, (killed, late)
    admitted = {r["node"]: r["time"] for r in _truth(run_dir, "node_healthy")
                if r["time"] > t_fault and r["node"] not in before}  # fmt: skip
    assert admitted, "the lab admitted a replacement"
    for node, at in admitted.items():
        first = min((b.start for b in buckets if node in b.nodes), default=None)
        assert first is not None and at - _SETTINGS.slo.bucket <= first <= at + TOLERANCE, (
            node, at, first)  # fmt: skip


def _gpu_node_loss(run_dir: Path, result: dict[str, Any]) -> None:
    # A chaos test is judged for graceful degradation against the plan's budget.
    inference = _inference(result)
    assert inference["degradation"]["status"] in (
        "absorbed",
        "degraded gracefully",
        "not graceful",
    )
    assert inference["degradation"]["budget"]["max_error_ratio"] == 0.5
    _met_near_the_truth(result)
    # Half the nodes cannot carry the load: users wait for the replacements.
    _phases_follow_the_truth(run_dir, result, every=True)
    _served_nodes_follow_the_truth(run_dir)


def _gpu_node_loss_llm(run_dir: Path, result: dict[str, Any]) -> None:
    """The same crash with the load speaking the lab's OpenAI-compatible API, streamed:
    the RTO as near the lab's truth, and every answer's time to first token and
    inter-token gaps recorded. The first token leaves after the node's service time and
    the others a quarter of it apart, so gaps of that size prove the balancer and router
    pass tokens on as they are written (a buffered answer shows gaps of ~0)."""
    _met_near_the_truth(result)
    _phases_follow_the_truth(run_dir, result, every=False)
    started = next(e for e in _events(run_dir) if e["kind"] == "load_started")
    assert started["protocol"] == "openai-chat", started
    # The buckets in which every answer arrived (before the fault and after recovery).
    served = [b for b in read_timeline(run_dir)
              if b.ttft_p95 is not None and b.requests >= 20 and b.failures == 0]  # fmt: skip
    assert len(served) >= 5, served
    service = _SETTINGS.lab.service_time
    assert all(b.ttft_p95 is not None and b.ttft_p95 >= service for b in served), served
    gaps = sorted(b.itl_p95 for b in served if b.itl_p95 is not None)
    assert gaps and gaps[len(gaps) // 2] >= 0.8 * 0.25 * service, gaps
    assert all(b.tokens > 0 for b in served), served
    # Scored as the other drills' answers are: the class the sentence names.
    assert sum(b.correct for b in served) / sum(b.scored for b in served) >= 0.85, served
    page = (run_dir / "report.html").read_text()
    assert "time to first token p95" in page and "inter-token latency p95" in page


def _region_failover(run_dir: Path, result: dict[str, Any]) -> None:
    assert _inference(result)["degradation"] is None, "a full-region test is not judged for it"
    _met_near_the_truth(result)
    _phases_follow_the_truth(run_dir, result, every=False)


def _no_gpu_capacity(run_dir: Path, result: dict[str, Any]) -> None:
    inference = _inference(result)
    assert inference["verdict"] == "missed"
    assert inference["achieved"]["recovered"] is False
    assert inference["achieved"]["rto_seconds"] is None
    # The cause comes from what the lab's supervisor showed through its control API
    # during the run (as an Auto Scaling group's failed activity would), and it says
    # what the lab's ground truth says happened.
    refused = _truth(run_dir, "provisioning_refused")[0]
    assert inference["cause"] == (
        f"{refused['reason']} (lab supervisor of lab-west: launch a GPU node failed)"
    )
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    failed = [e for e in events if e["kind"] == "target_activity" and e["status"] == "failed"]
    assert failed and failed[0]["region"] == "lab-west", failed
    assert "no GPU capacity in region lab-west" in inference["explanation"]
    assert result["deviated"], "the steady state after the method does not hold"
    page = (run_dir / "report.html").read_text()
    assert "not recovered" in page and "no GPU capacity in region lab-west" in page


def _full_region_failover(run_dir: Path, result: dict[str, Any]) -> None:
    # Every component of the plan has a measured RTO; stateful ones an RPO too.
    assert {c["name"] for c in result["components"]} == {c.name for c in _SETTINGS.components}
    for component in result["components"]:
        assert component["achieved"]["rto_seconds"] is not None, component
        if component["target"]["rpo_seconds"] is not None:
            assert isinstance(component["achieved"]["rpo_seconds"], float | int), component
    # Pipelines: the RPO from the jobs' published progress agrees with the age of the
    # checkpoint the lab really resumed from, within 0.5 s.
    t_fault = _fault_time(run_dir)
    for job in ("training", "evaluation"):
        resumed = next(r for r in _truth(run_dir, "pipeline_resumed") if r["job"] == job)
        truth = t_fault - resumed["checkpoint_created_at"]
        measured = _component(result, job)["achieved"]["rpo_seconds"]
        assert abs(measured - truth) <= 0.5, (job, measured, truth)
    # The vector index after the region's loss: canary vectors against what the DR
    # region's standby index held when the primary went.
    vector = _component(result, "vector-index")["achieved"]
    assert vector["rpo_detail"]["served_by"] == "lab-west", vector
    standby = _truth(run_dir, "vector_index_standby")[0]
    assert abs(vector["rpo_seconds"] - (t_fault - standby["data_as_of"])) <= 0.5, vector


def _replication_lag(run_dir: Path, result: dict[str, Any]) -> None:
    # Replication paused for D seconds before the primary is lost: RPO = D within 0.5 s.
    paused = _truth(run_dir, "feature_replication_paused")[0]["time"]
    failed = _truth(run_dir, "feature_primary_failed")[0]["time"]
    rpo = _component(result, "feature-store")["achieved"]["rpo_seconds"]
    assert abs(rpo - (failed - paused)) <= 0.5, (rpo, failed - paused)
    assert _component(result, "feature-store")["rpo_verdict"] == "missed", "8 s over 5 s"


def _vector_index_loss(run_dir: Path, result: dict[str, Any]) -> None:
    # The RPO from canary vectors agrees with the age of the snapshot the lab restored
    # within 0.5 s; both recovery paths are timed.
    restored = _truth(run_dir, "vector_index_restored")
    assert [r["method"] for r in restored] == ["snapshot", "rebuild"]
    vector = _component(result, "vector-index")["achieved"]
    truth = _fault_time(run_dir) - restored[0]["data_as_of"]
    assert abs(vector["rpo_seconds"] - truth) <= 0.5, (vector["rpo_seconds"], truth)
    assert [e["recovered"] for e in vector["episodes"]] == [True, True]
    assert vector["recall_after_recovery"] >= _SETTINGS.slo.quality_floor
    # Where its RTO went: the experiment's restore step started (the runbook acting)
    # and finished where the lab says the index came back.
    phases = vector["phases"]
    assert [p["phase"] for p in phases][:2] == ["detect", "provision"], phases
    assert phases[1]["evidence"].endswith("restore-the-index-from-its-newest-snapshot finished")
    _boundaries_near(run_dir, phases[1:2], {"provision": "vector_index_restored"})


def _model_artifact_deletion(run_dir: Path, result: dict[str, Any]) -> None:
    artifacts = _component(result, "model-artifacts")["achieved"]
    assert artifacts["rpo_detail"]["versions_lost"] == 0
    assert artifacts["recovered"] is True
    # Where inference's RTO went (issue 28 names this drill): replacements that wait for
    # the model until versioning brings it back; each boundary where the lab's record
    # says that step happened.
    _phases_follow_the_truth(run_dir, result, every=False)


def _model_registry_loss(run_dir: Path, result: dict[str, Any]) -> None:
    # The registry changes the RPO counts lost are the ones the lab says the restored
    # copy lacks, and the RTO is the outage.
    lost = _truth(run_dir, "model_registry_lost")[0]
    back = _truth(run_dir, "model_registry_restored")[0]
    registry = _component(result, "model-registry")
    assert registry["verdict"] == "met", registry
    # The lab counts every version its lost database held; aidrill counts the changes
    # the canary had acknowledged. A change whose version was registered when the
    # registry died, before its alias move was answered, is lost but was never
    # acknowledged: at most that one change separates the two.
    measured = registry["achieved"]["rpo_detail"]["versions_lost"]
    held = lost["versions"] - back["versions"]
    assert held - 1 <= measured <= held, (measured, held)
    outage = back["time"] - lost["time"]
    assert abs(registry["achieved"]["rto_seconds"] - outage) <= TOLERANCE, (registry, outage)
    # Where its RTO went: the runbook's restore step started (the organisation acting);
    # the step finishes after the registry already serves (it waits for the nodes), so
    # its end is off the path and the rest is one phase up to the recovery.
    phases = registry["achieved"]["phases"]
    assert phases[0]["phase"] == "detect", phases
    assert phases[0]["evidence"].endswith("restore-the-registry-from-its-dr-copy started")
    started = next(e["time"] for e in _events(run_dir) if e["kind"] == "recovery_started")
    fault_at = datetime.fromisoformat(registry["achieved"]["fault_at"]).timestamp()
    boundary = fault_at + phases[0]["from_fault_seconds"] + phases[0]["seconds"]
    assert abs(boundary - started) <= 0.01, (phases[0], started)


def _model_alias_bad_version(run_dir: Path, result: dict[str, Any]) -> None:
    # Answers are wrong until the alias moves back, and nothing was lost.
    assert _component(result, "model-registry")["achieved"]["rpo_seconds"] == 0
    assert _inference(result)["achieved"]["impact"] is True
    assert _inference(result)["verdict"] == "met"


def _feature_store_failover(run_dir: Path, result: dict[str, Any]) -> None:
    features = _component(result, "feature-store")
    assert features["verdict"] == "met", features  # the replica takes over within 5 s of data
    # Where its RTO went: the store's supervisor (its activity list, the lab's control
    # API) marked the primary failed and promoted the replica where the lab's own record
    # says it did; the promoted replica serves at once.
    phases = features["achieved"]["phases"]
    assert [p["phase"] for p in phases] == ["detect", "provision", "load", "warm"], phases
    _boundaries_near(run_dir, phases[:3], {"detect": "feature_replica_promoted",
                                           "provision": "feature_replica_promoted",
                                           "load": "feature_replica_promoted"})  # fmt: skip


def _boundaries_near(run_dir: Path, phases: list[dict[str, Any]], truth: dict[str, str]) -> None:
    """Each phase's end within a bucket and a health interval of the lab's record."""
    t_fault = _fault_time(run_dir)
    for phase in phases:
        boundary = t_fault + phase["from_fault_seconds"] + phase["seconds"]
        kind = truth[phase["phase"].split("+")[-1]]
        times = [r["time"] for r in _truth(run_dir, kind)]
        assert any(abs(t - boundary) <= TOLERANCE for t in times), (phase, kind, times)


def _network_degradation(run_dir: Path, result: dict[str, Any]) -> None:
    # A degraded path slows answers; whatever the verdict, it rests on covered evidence.
    for component in result["components"]:
        if component["verdict"] in ("met", "missed"):
            assert "coverage_gaps" not in component["achieved"], component


def _until_rollbacks(run_dir: Path) -> float:
    return float(next(r["time"] for r in _events(run_dir) if r["kind"] == "rollbacks_started"))


# The lab's own record of its balancer reacting to a node (never read by measurement).
_REACTIONS = ("node_unhealthy", "node_removed", "router_region_down")


def _blind_never_seen(run_dir: Path, result: dict[str, Any]) -> None:
    """As shipped, the lab's health checks pass through the fault: the blind time is the
    whole window, the lab's own record shows no reaction in it, users were hurt, the
    verdict says so and the run page shows the health checks passing meanwhile."""
    t_fault, t_end = _fault_time(run_dir), _until_rollbacks(run_dir)
    reacted = [r for k in _REACTIONS for r in _truth(run_dir, k) if t_fault <= r["time"] <= t_end]
    assert reacted == [], reacted
    inference = _inference(result)
    blind = inference["achieved"]["blind"]
    assert blind["detected"] is False and blind["reaction"] == "never during the window", blind
    assert abs(blind["seconds"] - (t_end - t_fault)) <= _SETTINGS.slo.bucket, (
        blind,
        t_end - t_fault,
    )
    assert blind["seconds"] == blind["window_seconds"]
    assert result["ground_truth"]["blind_seconds"] == pytest.approx(blind["seconds"], abs=0.01)
    assert result["ground_truth"]["rto_seconds"] is None, "users' RTO is not the lab's to say"
    assert blind["users_hurt"] is True and blind["over_limit"] is True, blind
    assert blind["limit_seconds"] == _SETTINGS.slo.max_blind
    # Most polls of the balancer's rotation and the nodes' health endpoints said healthy
    # (a poll may time out on a loaded machine; none should be missing).
    assert blind["health_samples"] >= (t_end - t_fault) / 0.5 - 3, blind
    assert blind["health_said_healthy"] >= 0.8, blind
    assert "served blind for the whole" in inference["explanation"], inference["explanation"]
    assert "Served blind: inference" in (run_dir / "report.html").read_text()


def _blind_bounded(run_dir: Path, result: dict[str, Any]) -> None:
    """With the balancer's outlier ejection on, the blind time ends when the balancer
    ejected the node, where the lab's own record says it did, and users recover."""
    t_fault = _fault_time(run_dir)
    ejected = [
        r for r in _truth(run_dir, "node_unhealthy")
        if r["time"] >= t_fault and "quality check" in r.get("cause", "")
    ]  # fmt: skip
    assert ejected, _truth(run_dir, "node_unhealthy")
    inference = _inference(result)
    blind = inference["achieved"]["blind"]
    assert blind["detected"] is True, blind
    truth = ejected[0]["time"] - t_fault
    assert abs(blind["seconds"] - truth) <= _SETTINGS.slo.bucket, (blind["seconds"], truth)
    assert result["ground_truth"]["blind_seconds"] == pytest.approx(truth, abs=0.01)
    assert blind["over_limit"] is False, blind
    assert inference["verdict"] == "met", inference
    assert _truth(run_dir, "node_replaced"), "the ejected node is replaced"


CHECKS: dict[str, Callable[[Path, dict[str, Any]], None]] = {
    "gpu-node-loss": _gpu_node_loss,
    "gpu-node-loss-llm": _gpu_node_loss_llm,
    "region-failover": _region_failover,
    "region-failover-no-gpu-capacity": _no_gpu_capacity,
    "feature-store-failover": _feature_store_failover,
    "replication-lag": _replication_lag,
    "vector-index-loss": _vector_index_loss,
    "model-artifact-deletion": _model_artifact_deletion,
    "model-registry-loss": _model_registry_loss,
    "model-alias-bad-version": _model_alias_bad_version,
    "full-region-failover": _full_region_failover,
    "network-degradation": _network_degradation,
    "lying-health": _blind_never_seen,
    "wrong-model": _blind_never_seen,
    "stuck-loading": _blind_never_seen,
    "gpu-degradation": _blind_never_seen,
    "slow-drip": _blind_never_seen,
    "lying-health-ejected": _blind_bounded,
    "wrong-model-ejected": _blind_bounded,
}


def test_every_shipped_drill_is_checked() -> None:
    assert set(DRILLS) == {*CHECKS, "storage-throttle"}


def _run(workspace: Path, lab: LabClient, name: str) -> Path:
    """The drill's fast variant (see ``fast_variant``) through `aidrill run`."""
    experiment = fast_variant(workspace, f"experiments/lab/{name}.yaml")
    done = run_aidrill(workspace, lab.state_dir, "run", "--no-live", experiment)
    runs = sorted((workspace / "reports" / "runs").glob(f"*-{name}-fast"))
    assert len(runs) == 1, done.stdout + done.stderr
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return runs[0]


@pytest.mark.parametrize("name", [d for d in DRILLS if d not in DEMO_DRILLS and d in CHECKS])
def test_a_shipped_drill(name: str, workspace: Path, lab: LabClient) -> None:
    run_dir = _run(workspace, lab, name)
    CHECKS[name](run_dir, check_every_run(run_dir))
    assert lab.status()["faults"] == [], "no fault is left behind"


def test_region_failover_through_the_labs_streamed_openai_api(
    workspace: Path, lab: LabClient
) -> None:
    """Issue 27: the region failover with the load speaking streamed openai-chat (the
    drill's own ``protocol``): valid, its RTO within a second of the lab's truth, and
    time to first token and inter-token latency measured through the failover."""
    fast = workspace / fast_variant(workspace, "experiments/lab/region-failover.yaml")
    document = yaml.safe_load(fast.read_text())
    document["extensions"][0]["protocol"] = {"kind": "openai-chat", "model": "lab-model",
                                             "stream": True, "max-tokens": 16}  # fmt: skip
    variant = fast.with_name("region-failover-llm-fast.yaml")
    variant.write_text(yaml.safe_dump(document, sort_keys=False))
    done = run_aidrill(workspace, lab.state_dir, "run", "--no-live", str(variant))
    (run_dir,) = (workspace / "reports" / "runs").glob("*-region-failover-llm-fast")
    assert done.returncode == 0, done.stdout + done.stderr
    result = check_every_run(run_dir)
    _region_failover(run_dir, result)
    started = next(e for e in _events(run_dir) if e["kind"] == "load_started")
    assert started["protocol"] == "openai-chat", started
    streamed = [b for b in read_timeline(run_dir) if b.ttft_p95 is not None]
    assert len(streamed) >= 10 and all(b.itl_p95 is not None for b in streamed), streamed
    assert lab.status()["faults"] == [], "no fault is left behind"


@pytest.mark.reads_the_demo
@pytest.mark.parametrize("name", DEMO_DRILLS)
def test_a_drill_of_the_short_demo(name: str, demo_workspace: Path) -> None:
    (run_dir,) = (demo_workspace / "reports" / "runs").glob(f"*-{name}")
    CHECKS[name](run_dir, check_every_run(run_dir))


def test_throttled_storage_slows_cold_starts_and_the_rto_shows_it(
    workspace: Path, lab: LabClient
) -> None:
    run_dir = _run(workspace, lab, "storage-throttle")
    throttled = check_every_run(run_dir)
    cold = [r["load_seconds"] for r in throttled["recoveries"] if "load_seconds" in r]
    assert cold and min(cold) > 4.0, cold
    # Unthrottled, the lab replaces GPU nodes in its provisioning delay plus a fast
    # model load (gpu-node-loss recovers in about 3.5 s): here the slow load shows.
    slow = _inference(throttled)["achieved"]["rto_seconds"]
    assert slow >= _SETTINGS.lab.provisioning_delay + min(cold) - TOLERANCE, (slow, cold)
    assert throttled["ground_truth"]["rto_seconds"] > 6.0
    _met_near_the_truth(throttled)
