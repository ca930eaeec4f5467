"""From one run's evidence (events + timeline) to per-component results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aidrill.measure._records import Bucket, Event
from aidrill.measure._recovery import HealthRule, RecoveryMeasurement, measure_recovery
from aidrill.measure._verdict import Verdict, judge_rto
from aidrill.plan import Component, Plan

GROUND_TRUTH_PREFIX = "lab:"


@dataclass(frozen=True)
class ComponentResult:
    component: Component
    measurement: RecoveryMeasurement | None
    verdict: Verdict
    cause: str | None = None

    def to_record(self) -> dict[str, Any]:
        m = self.measurement
        achieved: dict[str, Any] = {"rto_seconds": None, "recovered": None}
        if m is not None:
            achieved = {
                "rto_seconds": _round(m.rto),
                "recovered": m.recovered,
                "impact": m.impact,
                "detection_delay_seconds": _round(m.detection_delay),
                "first_unhealthy": iso(m.t_first_unhealthy),
                "first_success": iso(m.t_first_success),
                "recovered_at": iso(m.t_recovered),
                "observation_window_seconds": _round(m.window),
                "sustain_seconds": m.sustain,
            }
        return {
            "name": self.component.name,
            "tier": self.component.tier,
            "target": {"rto_seconds": self.component.rto, "rpo_seconds": self.component.rpo},
            "rationale": self.component.rationale,
            "achieved": achieved,
            "verdict": self.verdict.status,
            "explanation": self.verdict.reason,
            "cause": self.cause,
        }


@dataclass(frozen=True)
class RunEvaluation:
    t_fault: float | None
    window_end: float | None
    components: list[ComponentResult]
    ground_truth_rto: float | None = None
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {"met": 0, "missed": 0, "inconclusive": 0, "not measured": 0}
        for result in self.components:
            counts[result.verdict.status] += 1
        return counts


def health_rule_for(plan: Plan) -> HealthRule:
    return HealthRule(plan.slo.success_ratio, plan.slo.p95_latency, plan.slo.quality_floor)


def evaluate_run(
    plan: Plan,
    component_names: Sequence[str],
    events: Sequence[Event],
    buckets: Sequence[Bucket],
    sustain: float,
) -> RunEvaluation:
    """Measure every component the experiment names, from evidence only."""
    t_fault = _first_time(events, "fault_injected")
    window_end = _first_time(events, "rollbacks_started") or _first_time(events, "load_stopped")
    if window_end is None and buckets:
        window_end = max(b.end for b in buckets)
    notes: list[str] = []
    results = []
    for name in component_names:
        component = plan.component(name)
        if component is None:
            notes.append(f"component {name!r} is not in the plan")
            continue
        results.append(
            _evaluate_component(plan, component, events, buckets, t_fault, window_end, sustain)
        )
    return RunEvaluation(
        t_fault, window_end, results, _ground_truth_rto(events, t_fault, window_end), notes
    )


def _evaluate_component(
    plan: Plan,
    component: Component,
    events: Sequence[Event],
    buckets: Sequence[Bucket],
    t_fault: float | None,
    window_end: float | None,
    sustain: float,
) -> ComponentResult:
    if component.tier != "inference":
        return ComponentResult(
            component,
            None,
            Verdict("not measured", f"no {component.tier} series is recorded by this run"),
        )
    if t_fault is None or window_end is None:
        return ComponentResult(
            component,
            None,
            Verdict("not measured", "no fault was injected, so there is nothing to recover from"),
        )
    if not buckets:
        return ComponentResult(
            component,
            None,
            Verdict("not measured", "the load produced no timeline, so recovery cannot be judged"),
        )
    measurement = measure_recovery(buckets, t_fault, window_end, health_rule_for(plan), sustain)
    cause = None if measurement.recovered else _cause(events, t_fault, window_end)
    return ComponentResult(
        component, measurement, judge_rto(component.rto, measurement, cause), cause
    )


def _cause(events: Sequence[Event], start: float, end: float) -> str | None:
    for event in events:
        if (
            start <= event.time <= end
            and event.kind == f"{GROUND_TRUTH_PREFIX}provisioning_refused"
        ):
            return str(event.data.get("reason") or "GPU nodes could not be provisioned")
    return None


def _ground_truth_rto(
    events: Sequence[Event], t_fault: float | None, window_end: float | None
) -> float | None:
    """What the lab itself says: fault injected → serving capacity restored."""
    if t_fault is None or window_end is None:
        return None
    lost = [
        e.time
        for e in events
        if e.kind == f"{GROUND_TRUTH_PREFIX}serving_capacity_lost" and e.time >= t_fault
    ]
    if not lost:
        return None
    restored = [
        e.time
        for e in events
        if e.kind == f"{GROUND_TRUTH_PREFIX}serving_capacity_restored"
        and lost[0] < e.time <= window_end
    ]
    return restored[0] - t_fault if restored else None


def _first_time(events: Sequence[Event], kind: str) -> float | None:
    return next((e.time for e in sorted(events, key=lambda e: e.time) if e.kind == kind), None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
