"""Faults a health check does not see (issue 29): the blind time, measured from the
target's own API; the health signals beside users' answers; the finding and the
quarterly section. Synthetic evidence here (the lab drills are in test_lab_drills)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aidrill.cli.main import cli
from aidrill.experiment import check_blast_radius, load_experiment
from aidrill.lab.serving._node_faults import NodeFault
from aidrill.lab.serving._outliers import LATENCY, Answer, judge
from aidrill.measure import ACTIVITY_EVENT, Event, HealthSample, served_blind
from aidrill.measure._run import _ground_truth_blind, _ground_truth_rto
from aidrill.plan import load_plan
from aidrill.report import Quarter

from ._runs import synthetic_run
from .conftest import PLAN, REPO, copy_shipped_files


def _detect(at: float, action: str = "take GPU node east-1 out of rotation") -> Event:
    return Event(at, ACTIVITY_EVENT, {"source": "lab load balancer of east", "action": action,
                                      "status": "succeeded", "step": "detect",
                                      "cause": "it failed the quality check"})  # fmt: skip


def test_blind_until_the_first_reaction_of_the_targets_own_api() -> None:
    launch = Event(101.0, ACTIVITY_EVENT, {"action": "launch", "step": "provision"})
    blind = served_blind(100.0, 130.0, [launch, _detect(103.5), _detect(104.0)])
    assert blind.detected and blind.seconds == pytest.approx(3.5)
    assert blind.reaction.startswith("lab load balancer of east reacted: take GPU node east-1")
    assert "quality check" in blind.reaction


def test_never_seen_is_the_whole_window_and_says_so() -> None:
    before = _detect(99.0)  # a reaction to something earlier is not to this fault
    after = _detect(131.0)  # after the rollbacks began: the rollback ended the fault
    blind = served_blind(100.0, 130.0, [before, after])
    assert not blind.detected and blind.seconds == blind.window_seconds == 30.0
    assert blind.reaction == "never during the window"
    record = blind.to_record(limit=5.0, users_hurt=True)
    assert record.over_limit is True
    assert "whole 30.0 s window" in blind.sentence(5.0)
    # Not over the limit when users were never hurt (a leak that never crossed the SLO).
    assert blind.to_record(limit=5.0, users_hurt=False).over_limit is False
    assert blind.to_record(limit=None, users_hurt=True).over_limit is False


def test_the_labs_own_account_of_a_node_fault() -> None:
    """The truth tests compare with: fault → the first faulted node out of rotation, or
    the window; no RTO truth for a node that keeps serving (its share decides that)."""
    lab = "lab:"
    events = [
        Event(100.0, "fault_injected", {"activity": "x"}),
        Event(100.1, f"{lab}node_fault_set", {"node": "n2", "mode": "wrong-model"}),
        Event(100.5, f"{lab}serving_capacity_lost", {}),
        Event(101.0, f"{lab}node_unhealthy", {"node": "n1"}),  # another node: not it
        Event(101.3, f"{lab}node_unhealthy", {"node": "n2"}),
        Event(104.0, f"{lab}serving_capacity_restored", {}),
    ]
    assert _ground_truth_blind(events, 100.0, 130.0) == pytest.approx(1.3)
    assert _ground_truth_rto(events, 100.0, 130.0) is None
    assert _ground_truth_blind(events[:3], 100.0, 130.0) == pytest.approx(30.0)
    plain = [e for e in events if e.data.get("mode") is None]
    assert _ground_truth_blind(plain, 100.0, 130.0) is None
    assert _ground_truth_rto(plain, 100.0, 130.0) == pytest.approx(4.0)


def test_the_health_checks_claim_beside_the_blind_stretch() -> None:
    health = [HealthSample(100.0 + i, {"n1 in rotation": True, "n1 /healthz": i != 2})
              for i in range(10)]  # fmt: skip
    blind = served_blind(100.0, 130.0, [_detect(104.5)], health)
    assert blind.health_samples == 5 and blind.health_passing == pytest.approx(0.8)
    with pytest.raises(TypeError):
        HealthSample.from_record({"time": 1, "signals": ["x"]})


def test_a_polled_health_signal_turning_unhealthy_is_a_reaction() -> None:
    """A model server's own health endpoint saying 503 after the fault, in two polls
    running, is what a load balancer polling it acts on: it ends the blind stretch at
    the first of them, even where the target keeps no activity log. Only a signal that
    said healthy just before the fault counts; one slow poll is no reaction."""

    def polls(*rows: tuple[float, dict[str, bool]]) -> list[HealthSample]:
        return [HealthSample(t, signals) for t, signals in rows]

    ok, down = {"GET /health": True}, {"GET /health": False}
    honest = polls((99.5, ok), (100.2, ok), (100.7, down), (101.2, down))
    blind = served_blind(100.0, 130.0, [], honest)
    assert blind.detected and blind.seconds == pytest.approx(0.7)
    assert blind.reaction == "health signal GET /health said unhealthy"
    assert blind.health_samples == 2 and blind.health_passing == pytest.approx(0.5)
    # An activity of the target's API earlier than the poll wins, and the other way round.
    assert served_blind(100.0, 130.0, [_detect(100.4)], honest).seconds == pytest.approx(0.4)
    assert served_blind(100.0, 130.0, [_detect(103.0)], honest).seconds == pytest.approx(0.7)
    # One slow poll between healthy ones (a busy host) is not a reaction; the next turn is.
    blip = polls((99.5, ok), (100.5, down), (101.0, ok), (104.0, down), (104.5, {}), (105.0, down))
    assert served_blind(100.0, 130.0, [], blip).seconds == pytest.approx(4.0)
    # A lying health endpoint: 200 all through, so blind for the whole window, with its
    # health checks passing in every sample.
    lying = served_blind(100.0, 130.0, [], polls(*((100.0 + i / 2, ok) for i in range(-2, 60))))
    assert not lying.detected and lying.seconds == 30.0 and lying.health_passing == 1.0
    # Not reactions: a signal already unhealthy before the fault, one first seen after it
    # (a replacement node), a poll that could not be read, a turn after the window.
    stale = {"GET /health": True, "old node": False}
    after = {"GET /health": True, "old node": False, "new node": False}
    late = polls((99.5, stale), (100.5, after), (101.0, after), (101.5, {}), (131.0, down),
                 (131.5, down))  # fmt: skip
    assert not served_blind(100.0, 130.0, [], late).detected
    # No poll before the fault: nothing said healthy, so nothing can be seen to turn.
    assert not served_blind(100.0, 130.0, [], polls((100.5, down), (101.0, down))).detected
    both, gone = {"a": True, "b": True}, {"a": False, "b": False}
    many = served_blind(100.0, 130.0, [], polls((99.0, both), (100.5, gone), (101.0, gone)))
    assert many.reaction == "health signal a said unhealthy (and 1 more)"
    # A signal withdrawn (a pod a scale-down deleted, never reported NotReady) in two
    # readable polls running is a reaction; withdrawn from one poll only, it is not.
    pods = {"east/pod-1 Ready": True, "west/pod-9 Ready": True}
    west = {"west/pod-9 Ready": True}
    deleted = served_blind(100.0, 130.0, [], polls((99.5, pods), (100.3, west), (100.8, west)))
    assert deleted.detected and deleted.seconds == pytest.approx(0.3)
    assert deleted.reaction == "health signal east/pod-1 Ready was withdrawn"
    flicker = polls((99.5, pods), (100.3, west), (100.8, pods), (101.3, pods))
    assert not served_blind(100.0, 130.0, [], flicker).detected
    # What the health checks claimed: a standby's check, unhealthy by design before the
    # fault (a pilot-light DR region), does not make every sample read "unhealthy".
    standby = {"primary check": True, "dr check": False}
    lying_with_standby = polls(*((100.0 + i / 2, standby) for i in range(-2, 60)))
    assert served_blind(100.0, 130.0, [], lying_with_standby).health_passing == 1.0


def test_a_health_check_that_turned_is_the_detect_phase_where_no_activity_was_read(
    tmp_path: Path,
) -> None:
    """A target with no activity log whose health check failed 1 s after the fault (a
    Route 53 check, a server's /health): the RTO's detect phase ends there, named, and
    the rest stays one unsplit phase (nothing marked provision or load)."""
    down = {"route 53 health check c1 (us-east-1)": False}
    up = {"route 53 health check c1 (us-east-1)": True}
    polls = [(18 + i / 2, up if 18 + i / 2 < 21 else down) for i in range(20)]
    run_dir = synthetic_run(tmp_path / "runs", "health-detect", time.time() - 600, outage=5.0,
                            health=polls)  # fmt: skip
    inference = json.loads((run_dir / "result.json").read_text())["components"][0]
    phases = inference["achieved"]["phases"]
    assert [p["phase"] for p in phases] == ["detect", "provision+load+warm"], phases
    assert phases[0]["seconds"] == pytest.approx(1.0)
    assert phases[0]["evidence"] == (
        "the health checks aidrill polled: health signal route 53 health check c1 "
        "(us-east-1) said unhealthy"
    )
    assert sum(p["seconds"] for p in phases) == pytest.approx(inference["achieved"]["rto_seconds"])
    assert inference["achieved"]["blind"]["seconds"] == pytest.approx(1.0)


def test_the_plan_sets_a_limit_and_a_component_its_own(tmp_path: Path) -> None:
    plan = load_plan(PLAN)
    assert plan.slo.max_blind == 5.0
    text = PLAN.read_text().replace(
        "    tier: inference\n", "    tier: inference\n    max_blind: 2s\n", 1
    )
    (tmp_path / "drplan.yaml").write_text(text)
    assert load_plan(tmp_path / "drplan.yaml").component("inference").max_blind == 2.0  # type: ignore[union-attr]


def test_a_safeguard_switched_on_in_the_method_is_no_fault() -> None:
    experiment = load_experiment(REPO / "experiments/lab/wrong-model-ejected.yaml").raw
    faults = check_blast_radius(experiment, load_plan(PLAN), full_outage=False)
    assert [f.name for f in faults] == ["serve-a-wrong-model-on-one-gpu-node"]


def test_node_fault_modes() -> None:
    fault = NodeFault()
    assert fault.refusal() is None and fault.service_time(0.08) == 0.08
    fault.set({"mode": "lying-health"})
    assert fault.refusal() == (500, {"error": "EngineDeadError: the engine loop is not running"})
    fault.set({"mode": "gpu-degradation", "factor": 4, "error_share": 1.0})
    assert fault.service_time(0.1) == pytest.approx(0.4) and fault.fails_now() is not None
    fault.set({"mode": "slow-drip", "ramp": 0.1, "ceiling": 0.5})
    fault.since -= 10  # ten seconds into the leak: capped at the ceiling
    assert fault.service_time(0.1) == pytest.approx(0.6)
    fault.set({"mode": "wrong-model"})
    assert fault.wrong_model and fault.refusal() is None
    with pytest.raises(ValueError, match="unknown fault mode"):
        fault.set({"mode": "meltdown"})
    assert fault.set({"mode": "none"}) == {"mode": "none"} and fault.mode is None


def test_the_outlier_check_judges_errors_latency_and_disagreement() -> None:
    answers = {
        "a": Answer(3, 0.1, None),
        "b": Answer(3, 0.1, None),
        "c": Answer(4, 0.1, None),
        "d": Answer(3, LATENCY + 0.5, None),
        "e": Answer(None, 2.0, "no answer (TimeoutError)"),
    }
    verdicts = judge(answers)
    assert verdicts["a"] is None and verdicts["b"] is None
    assert verdicts["c"] == "answered 4 where its peers answered 3"
    assert verdicts["d"] is not None and "limit" in verdicts["d"]
    assert verdicts["e"] == "no answer (TimeoutError)"
    # Two nodes that disagree have no majority: neither is judged wrong on its label.
    assert judge({"a": Answer(1, 0.1, None), "b": Answer(2, 0.1, None)}) == {"a": None, "b": None}


_ALL_HEALTHY = {"lab-east-node-1 in rotation": True, "lab-east-node-1 /healthz": True}


def _blind_quarter(root: Path) -> tuple[Path, Path]:
    """Two runs of the lying-health drill: the first never seen by the health checks
    (the endpoint says 200 throughout a 5 s outage), the second caught in 1 s."""
    runs = root / "reports" / "runs"
    start = time.time() - 600
    first = synthetic_run(
        runs, "lying-health", start, outage=8.0, experiment="lying-health.yaml",
        health=[(20 + i / 2, _ALL_HEALTHY) for i in range(60)],
    )  # fmt: skip
    seen = [(start + 321.0, ACTIVITY_EVENT, {"source": "lab load balancer of lab-east",
             "action": "take GPU node lab-east-node-1 out of rotation", "status": "succeeded",
             "step": "detect", "cause": "it failed the quality check"})]  # fmt: skip
    second = synthetic_run(
        runs, "lying-health", start + 300, outage=2.0, experiment="lying-health.yaml",
        extra_events=seen, health=[(20 + i / 2, _ALL_HEALTHY) for i in range(2)],
    )  # fmt: skip
    return first, second


def _quarterly_report(workspace: Path, formats: str) -> Path:
    """`aidrill report` for this quarter, run in ``workspace``; its output folder."""
    cwd = Path.cwd()
    os.chdir(workspace)
    try:
        quarter = str(Quarter.current())
        done = CliRunner().invoke(cli, ["report", "--quarter", quarter, "--format", formats])
        assert done.exit_code == 0, done.output
        # Not a terminal: progress is one line per step (a CI log is never silent).
        assert f"{quarter} report: reading runs, tabletops and findings (" in done.output
        assert f"{quarter} report: sealing the manifest (" in done.output
    finally:
        os.chdir(cwd)
    return workspace / "reports" / quarter


def test_a_blind_fault_is_a_finding_and_has_its_section(tmp_path: Path) -> None:
    copy_shipped_files(tmp_path)
    first, second = _blind_quarter(tmp_path)
    result: dict[str, Any] = json.loads((first / "result.json").read_text())
    inference = result["components"][0]
    blind = inference["achieved"]["blind"]
    assert blind["detected"] is False and blind["seconds"] == 30.0 and blind["over_limit"]
    assert blind["health_said_healthy"] == 1.0
    assert "served blind for the whole 30.0 s window" in inference["explanation"]
    page = (first / "report.html").read_text()
    assert "Served blind: inference" in page and "all healthy" in page
    later = json.loads((second / "result.json").read_text())["components"][0]["achieved"]["blind"]
    assert later["detected"] is True and later["seconds"] == 1.0 and not later["over_limit"]

    out = _quarterly_report(tmp_path, "html,json,md")
    document = json.loads((out / "results.json").read_text())
    rows = document["blind_faults"]
    assert [(r["run_id"], r["detected"], r["over_limit"]) for r in rows] == [
        (first.name, False, True), (second.name, True, False)]  # fmt: skip
    assert rows[0]["remediation"].startswith("suggested: check answers, not liveness")
    findings = {f["id"]: f for f in document["findings"]}
    finding = findings[f"BLIND-{first.name}-inference"]
    assert finding["status"] == "closed", "the later run within the limit retests it"
    html = (out / "index.html").read_text()
    assert "Faults your health checks did not see" in html and "never seen" in html
    assert "Faults your health checks did not see" in (out / "summary.md").read_text()


def test_a_run_that_could_not_watch_the_health_reactions_has_no_blind_time(
    tmp_path: Path,
) -> None:
    """No activity log read and no health signal polled (an endpoint nobody here built):
    the blind time is not measured, never "the whole window", and is no finding."""
    copy_shipped_files(tmp_path)
    runs = tmp_path / "reports" / "runs"
    unwatched = synthetic_run(runs, "unwatched", time.time() - 600, outage=8.0)
    inference = json.loads((unwatched / "result.json").read_text())["components"][0]
    blind = inference["achieved"]["blind"]
    assert blind["measured"] is False and blind["seconds"] is None, blind
    assert not blind["over_limit"] and blind["users_hurt"]
    assert "not measured" in blind["summary"]
    assert "served blind for" not in inference["explanation"]
    assert (
        "not measured: the target exposed no activity log"
        in (unwatched / "report.html").read_text()
    )
    # A log that was read and held nothing is evidence: the whole window, over the limit.
    read_at = time.time() - 250
    read = synthetic_run(
        runs, "read", read_at - 50, outage=8.0, extra_events=[(read_at, "activities_read", {})]
    )
    watched = json.loads((read / "result.json").read_text())["components"][0]["achieved"]
    assert watched["blind"]["measured"] is True and watched["blind"]["over_limit"] is True

    document = json.loads((_quarterly_report(tmp_path, "json,md") / "results.json").read_text())
    assert [r["run_id"] for r in document["blind_faults"]] == [read.name]
    ids = {f["id"] for f in document["findings"]}
    assert f"BLIND-{read.name}-inference" in ids
    assert f"BLIND-{unwatched.name}-inference" not in ids
