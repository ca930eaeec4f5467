"""Coverage (DESIGN.md "Measurement"): missing or thin evidence is never health."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aidrill.measure import (
    Bucket,
    CanaryWrite,
    Event,
    HealthRule,
    Sample,
    TierEvidence,
    bucket_state,
    evaluate_run,
    judge_rto,
    judge_validity,
    measure_recovery,
)
from aidrill.plan import load_plan

from .conftest import PLAN

RULE = HealthRule(0.95, 0.5, 0.8, min_answers=10, grace=1.0)
T0 = 1_800_000_000.0


def bucket(start: float, mark: str) -> Bucket | None:
    """'h' healthy (30 answers), 's' sparse but healthy-looking (3 answers), 'x'
    failing, 'f' sparse and failing, '.' no bucket at all."""
    if mark == "h":
        return Bucket(start, 1.0, 30, 0, p95=0.2, correct=30, scored=30)
    if mark == "s":
        return Bucket(start, 1.0, 3, 0, p95=0.2, correct=3, scored=3)
    if mark == "x":
        return Bucket(start, 1.0, 30, 30, p95=0.01)
    if mark == "f":
        return Bucket(start, 1.0, 2, 2, p95=2.0)
    return None


def series(pattern: str, start: float = T0) -> list[Bucket]:
    found = (bucket(start + i, mark) for i, mark in enumerate(pattern))
    return [b for b in found if b is not None]


def test_a_sparse_bucket_is_unknown_and_a_sparse_failure_is_still_a_failure() -> None:
    sparse, failing = series("s")[0], series("f")[0]
    assert bucket_state(sparse, RULE) == "unknown"
    assert bucket_state(failing, RULE) == "unhealthy"
    assert bucket_state(Bucket(T0, 1.0, 0, 0), RULE) == "unknown"
    assert bucket_state(series("h")[0], RULE) == "healthy"


def test_the_load_dying_after_the_fault_is_not_measured_never_no_impact() -> None:
    # The run: 8 healthy buckets, all before the fault, then nothing.
    buckets = series("h" * 8)
    m = measure_recovery(buckets, T0 + 8.4, T0 + 48, RULE, sustain=10, covered_from=T0)
    assert not m.impact, "no bucket after the fault is unhealthy..."
    verdict = judge_rto(20, m)
    assert verdict.status == "not measured", "...and that is no evidence of health"
    assert "from -0.4 s to the end of the window" in verdict.reason, verdict.reason


def test_a_window_of_sparse_answers_cannot_be_met() -> None:
    m = measure_recovery(series("hhhh" + "s" * 40), T0 + 4, T0 + 44, RULE, sustain=10)
    assert judge_rto(20, m).status == "not measured"


def test_one_missing_bucket_is_within_the_grace() -> None:
    m = measure_recovery(series("hhhxx" + "hh.h" + "h" * 20), T0 + 3, T0 + 29, RULE, 10)
    assert m.gaps == ()
    assert judge_rto(20, m).status == "met"


def test_a_gap_after_a_proven_recovery_does_not_undo_it() -> None:
    # Recovered at +2 s, held 10 s (proven at +12 s); the load died at +20 s.
    m = measure_recovery(series("xx" + "h" * 18), T0, T0 + 40, RULE, sustain=10)
    assert m.gaps and m.uncovered is None
    assert judge_rto(20, m).status == "met"


def test_a_gap_before_the_recovery_was_proven_leaves_it_not_measured() -> None:
    m = measure_recovery(series("xx" + "h" * 5 + "...." + "h" * 20), T0, T0 + 40, RULE, 10)
    assert m.uncovered is not None
    assert judge_rto(20, m).status == "not measured"


def _covered_until_proof(pattern: str, fault: int, sustain: int) -> bool:
    """Brute force: the known buckets of ``pattern`` leave no stretch of more than
    two buckets uncovered between the fault and either the window's end (no impact)
    or the moment the recovery was proven."""
    known = [i for i, m in enumerate(pattern) if m in "hxf"]
    if not any(pattern[i] in "xf" for i in known if i >= fault):
        end = len(pattern)
    else:
        end = len(pattern)
        bad = next(i for i in known if i >= fault and pattern[i] in "xf")
        for start in range(bad, len(pattern) - sustain + 1):
            if all(pattern[j] == "h" for j in range(start, start + sustain)):
                end = start + sustain
                break
    cursor = fault
    for i in known:
        if i + 1 <= cursor:
            continue
        if i >= end:
            break
        if i - cursor > 2:
            return False
        cursor = i + 1
    return end - cursor <= 2


@given(st.text(alphabet="hsxf.", min_size=1, max_size=50), st.integers(0, 10), st.integers(1, 8))
def test_met_always_rests_on_evidence_covering_the_window(
    pattern: str, fault: int, sustain: int
) -> None:
    m = measure_recovery(series(pattern), T0 + fault, T0 + len(pattern), RULE, sustain)
    verdict = judge_rto(30, m)
    if verdict.status == "met":
        assert _covered_until_proof(pattern, fault, sustain), (pattern, verdict.reason)


def _events(*records: tuple[float, str, dict[str, object]]) -> list[Event]:
    return [Event(T0 + t, kind, dict(data)) for t, kind, data in records]


def test_the_run_names_what_stopped_and_a_dead_load_makes_it_invalid() -> None:
    plan = load_plan(PLAN)
    events = _events(
        (0, "run_started", {"planned_faults": ["kill"]}),
        (1, "phase", {"phase": "steady-state-before"}),
        (8, "fault_injected", {"activity": "kill"}),
        (12.3, "apparatus_stopped", {
            "part": "the load generator", "how": "exited with -9",
            "series": ["inference", "search"], "fatal": True,
        }),
        (40, "rollbacks_started", {}),
    )  # fmt: skip
    validity = judge_validity(events)
    assert not validity.valid
    assert "the load generator exited with -9 at +4.3 s" in validity.reasons[0].reason
    result = evaluate_run(plan, ["inference"], events, series("h" * 12), 10.0)
    assert result.components[0].verdict.status == "not measured"


def test_a_gap_names_the_apparatus_stop_behind_it() -> None:
    plan = load_plan(PLAN)
    events = _events(
        (0, "run_started", {"planned_faults": ["kill"]}),
        (1, "phase", {"phase": "steady-state-before"}),
        (8, "fault_injected", {"activity": "kill"}),
        (15.2, "apparatus_stopped", {
            "part": "load worker 1", "how": "exited with -9", "series": ["inference"],
        }),
        (40, "rollbacks_started", {}),
    )  # fmt: skip
    evaluation = evaluate_run(
        plan, ["inference"], events, series("h" * 16), 10.0, min_answers={"inference": 10}
    )
    assert evaluation.validity.valid, "a lost worker reduces coverage; it is not fatal"
    verdict = evaluation.components[0].verdict
    assert verdict.status == "not measured"
    assert "no load answers from +8 s to the end of the window" in verdict.reason
    assert "load worker 1 exited with -9 at +7.2 s" in verdict.reason


@pytest.mark.parametrize("stop_at", [5.0, 20.0])
def test_a_canary_writer_that_stopped_leaves_the_rpo_not_measured(stop_at: float) -> None:
    plan = load_plan(PLAN)
    events = _events(
        (0, "run_started", {"planned_faults": ["lose-primary"]}),
        (1, "phase", {"phase": "steady-state-before"}),
        (10, "fault_injected", {"activity": "lose-primary"}),
        (30, "rollbacks_started", {}),
    )
    canary = [
        CanaryWrite(n, T0 + 1 + n * 0.1, True) for n in range(1, 400) if 1 + n * 0.1 < stop_at
    ]
    samples = [
        Sample(T0 + t / 4, "feature-store", True, 1.0) for t in range(0, 4 * 35)
    ]  # the feature reads go on
    tiers = TierEvidence(
        samples=samples,
        canary=canary,
        canary_surviving=[w.seq for w in canary],
        canary_audited_at=T0 + 30,
        regions=(plan.primary_region, plan.dr_region),
    )
    evaluation = evaluate_run(plan, ["feature-store"], events, [], 10.0, tiers)
    result = evaluation.components[0]
    assert result.verdict.status == "not measured", result.verdict.reason
    assert result.rpo is not None and result.rpo.seconds is None
    assert "no canary writes from" in result.rpo.reason
