"""Graceful degradation as a verdict, from buckets alone."""

from __future__ import annotations

from aidrill.measure import Bucket, HealthRule, judge_degradation
from aidrill.plan import DegradationBudget

RULE = HealthRule(0.95, 0.5, 0.8)
BUDGET = DegradationBudget.model_validate(
    {"max-error-ratio": 0.5, "max-p95": 2.0, "quality-floor": 0.5, "for": 10.0}
)


def _series(*bad: tuple[int, int, float]) -> list[Bucket]:
    """30 one-second buckets from t=100 (the fault), healthy but where ``bad`` says
    (second, failures of 40, p95)."""
    changed = {second: (failures, p95) for second, failures, p95 in bad}
    buckets = []
    for second in range(-5, 25):
        failures, p95 = changed.get(second, (0, 0.1))
        buckets.append(Bucket(100.0 + second, 1.0, 40, failures, p95=p95,
                              correct=40 - failures, scored=40))  # fmt: skip
    return buckets


def _judge(buckets: list[Bucket], recovered: bool = True) -> tuple[str, str]:
    result = judge_degradation(buckets, 100.0, 125.0, RULE, BUDGET, recovered)
    return result.status, result.reason


def test_a_fault_that_never_leaves_the_slo_is_absorbed() -> None:
    status, reason = _judge(_series((3, 1, 0.2)))
    assert status == "absorbed" and "worst at +3.0 s" in reason


def test_inside_the_budget_and_recovered_in_time_is_graceful() -> None:
    status, reason = _judge(_series((1, 12, 0.9), (2, 16, 1.5), (3, 4, 0.3)))
    assert status == "degraded gracefully", reason
    assert "outside the SLO for 3 s" in reason and "worst at +2.0 s: 40% errors" in reason


def test_one_bucket_beyond_the_budget_is_not_graceful_and_named() -> None:
    status, reason = _judge(_series((1, 12, 0.9), (4, 30, 0.4)))
    assert status == "not graceful"
    assert reason.startswith("beyond the budget at +4.0 s: error ratio 75% > 50%")
    assert "quality 0.25 < 0.50" in reason


def test_too_long_outside_the_slo_or_not_recovered_is_not_graceful() -> None:
    long = _series(*((s, 10, 0.6) for s in range(0, 12)))
    assert _judge(long) == (
        "not graceful", "outside the SLO for 12 s, the budget allows 10 s"
    )  # fmt: skip
    status, reason = _judge(_series((1, 12, 0.9)), recovered=False)
    assert status == "not graceful" and "not recovered within the RTO" in reason


def test_an_empty_bucket_during_the_fault_counts_as_every_request_failed() -> None:
    buckets = _series()
    buckets[7] = Bucket(102.0, 1.0, 0, 0)
    status, reason = _judge(buckets)
    assert status == "not graceful" and "error ratio 100% > 50%" in reason


def test_freshness_served_is_judged_against_the_rpo() -> None:
    from aidrill.measure import Event, evaluate_run
    from aidrill.plan import load_plan

    from .conftest import PLAN

    plan = load_plan(PLAN)
    ages = {3: 9.0}
    buckets = [
        Bucket(100.0 + s, 1.0, 40, 0, p95=0.1, correct=40, scored=40, max_age=ages.get(s, 1.0))
        for s in range(-5, 25)
    ]
    events = [
        Event(95.0, "run_started", {}),
        Event(100.0, "fault_injected", {"activity": "x"}),
        Event(125.0, "rollbacks_started", {}),
    ]
    evaluation = evaluate_run(plan, ["feature-store", "inference"], events, buckets, 10.0)
    features = next(r for r in evaluation.components if r.component.name == "feature-store")
    assert features.figures.freshness == (9.0, False)  # the lab's RPO is 5 s
    achieved = features.to_record().to_json()["achieved"]
    assert (achieved["worst_freshness_seconds"], achieved["freshness_within_rpo"]) == (9.0, False)
    inference = next(r for r in evaluation.components if r.component.name == "inference")
    assert inference.figures.freshness is None
    assert "worst_freshness_seconds" not in inference.to_record().to_json()["achieved"]
