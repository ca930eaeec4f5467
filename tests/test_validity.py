"""Validity: a drill that did not happen never says "met", in the run or the report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from aidrill.measure import Event, evaluate_run, judge_validity
from aidrill.plan import load_plan
from aidrill.report import Quarter, collect_runs, load_findings
from aidrill.report._quarterly import build_report

from ._runs import synthetic_run
from .conftest import PLAN

NOW = time.time() - 3600


def _events(*kinds: tuple[str, dict[str, object]]) -> list[Event]:
    return [Event(NOW + i, kind, dict(data)) for i, (kind, data) in enumerate(kinds)]


def test_a_valid_run_has_no_reason() -> None:
    events = _events(
        ("run_started", {"planned_faults": ["kill"]}),
        ("fault_injected", {"activity": "kill"}),
        ("rollback_ran", {"activity": "restore", "status": "succeeded"}),
    )
    assert judge_validity(events).valid


def test_a_failed_fault_names_the_activity_and_its_error() -> None:
    events = _events(
        ("run_started", {"planned_faults": ["crash-half"]}),
        ("fault_failed", {"activity": "crash-half", "error": "killing 1 of 0 GPU nodes"}),
    )
    validity = judge_validity(events)
    assert not validity.valid
    assert [r.reason for r in validity.reasons] == [
        "the fault crash-half was not injected: killing 1 of 0 GPU nodes"
    ]
    assert validity.reasons[0].activity == "crash-half"


def test_each_way_of_not_testing_is_a_reason() -> None:
    cases = {
        "preflight_failed": ({"problems": ["lab-east is failed"]}, "not nominal before"),
        "postflight_failed": ({"problems": ["router serves lab-west"]}, "after the rollbacks"),
        "rollback_ran": ({"activity": "restore", "status": "failed", "error": "x"}, "failed: x"),
        "run_aborted": ({"reason": "killed"}, "did not roll back"),
    }
    for kind, (data, phrase) in cases.items():
        validity = judge_validity(
            _events(("run_started", {"planned_faults": ["f"]}), ("fault_injected",
                    {"activity": "f"}), (kind, data))
        )  # fmt: skip
        assert not validity.valid and phrase in validity.summary(), kind
    never = judge_validity(_events(("run_started", {"planned_faults": ["f", "g"]}),
                                   ("fault_injected", {"activity": "f"})))  # fmt: skip
    assert never.summary() == "the fault g was never injected"


def test_an_invalid_run_measures_nothing_and_opens_no_episode() -> None:
    plan = load_plan(PLAN)
    events = _events(
        ("run_started", {"planned_faults": ["first", "second"]}),
        ("fault_injected", {"activity": "first"}),
        ("fault_failed", {"activity": "second", "error": "refused"}),
        ("rollbacks_started", {}),
    )
    evaluation = evaluate_run(plan, ["inference"], events, [], 10.0)
    (component,) = evaluation.components
    assert component.verdict.status == "not measured"
    assert component.verdict.reason.startswith("the run is invalid: the fault second")
    assert component.measurement is None and component.episodes == []
    record = component.to_record()
    assert record.achieved.rto_seconds is None


def test_result_json_records_validity_and_the_report_sets_invalid_runs_apart(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    start = Quarter.current().start.timestamp() + 3600
    valid = synthetic_run(runs, "gpu-node-loss", start, outage=5)
    no_fault = synthetic_run(runs, "no-fault", start + 100, fault_ok=False)
    bad_rollback = synthetic_run(runs, "bad-rollback", start + 200, outage=40, rollback_ok=False)

    result = json.loads((no_fault / "result.json").read_text())
    assert result["valid"] is False
    assert result["invalid_reasons"][0]["activity"] == "kill-half-of-the-primary-gpu-nodes"
    assert result["fault_injected"] is None, "a fault that failed is never listed as injected"
    assert all(c["verdict"] == "not measured" for c in result["components"])
    assert "Invalid run" in (no_fault / "report.html").read_text()
    assert json.loads((valid / "result.json").read_text())["valid"] is True
    rolled = json.loads((bad_rollback / "result.json").read_text())
    assert rolled["valid"] is False and rolled["components"][0]["verdict"] == "not measured"

    report = build_report(load_plan(PLAN), Quarter.current(), collect_runs(runs), [], [])
    assert [s.record.run_id for s in report.invalid_runs] == [no_fault.name, bad_rollback.name]
    inference = next(c for c in report.components if c.name == "inference")
    assert inference.runs == 1 and inference.status == "met", "invalid runs count nothing"
    assert inference.worst_rto is not None and inference.worst_rto < 20
    held = next(row for row in report.cadence if row.type == "chaos").held
    assert held == [valid.name]
    opened = {f.id: f for f in report.findings if f.id.startswith("INV-")}
    assert set(opened) == {f"INV-{no_fault.name}", f"INV-{bad_rollback.name}"}
    assert all(f.is_open for f in opened.values())


def test_a_retest_that_measured_nothing_leaves_its_finding_open(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    start = Quarter.current().start.timestamp() + 3600
    invalid = synthetic_run(runs, "retest-invalid", start, fault_ok=False)
    valid = synthetic_run(runs, "retest-valid", start + 100, outage=4)
    findings = tmp_path / "findings.yaml"
    entry = {"severity": "high", "owner": "sre", "due": "2027-01-31", "opened": "2026-07-01",
             "component": "inference"}  # fmt: skip
    listed = [
        {"id": "F-1", "title": "slow GPU replacement", "retest_run": invalid.name, **entry},
        {"id": "F-2", "title": "slow failover", "retest_run": valid.name, **entry},
    ]
    findings.write_text(yaml.safe_dump({"kind": "findings", "findings": listed}))
    report = build_report(
        load_plan(PLAN), Quarter.current(), collect_runs(runs), [], load_findings(findings)
    )
    status = {f.id: (f.status, f.retest) for f in report.findings}
    assert status["F-1"][0] == "open" and "invalid" in status["F-1"][1]
    assert status["F-2"][0] == "closed"
    # The invalid run's own finding is closed by the valid rerun of the same experiment.
    assert status[f"INV-{invalid.name}"][0] == "closed"
