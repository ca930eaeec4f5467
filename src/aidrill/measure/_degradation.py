"""Graceful degradation, as a verdict: how a component behaved *during* a fault,
against the degradation budget of the plan.

- *absorbed*: every bucket of the observation window stayed inside the SLO;
- *degraded gracefully*: some buckets left the SLO, but none went beyond the budget
  (error ratio, p95, quality floor), the time outside the SLO stayed within the
  budget's ``for``, and the component recovered within its RTO;
- *not graceful*: anything else; the worst bucket and its time after the fault are
  named either way.

An empty bucket in the window (no answer at all) counts as every request failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aidrill._durations import format_seconds
from aidrill.measure._records import Bucket
from aidrill.measure._recovery import HealthRule, is_healthy
from aidrill.measure._wire import DegradationRecord, Detail, WorstBucket
from aidrill.plan import DegradationBudget

DegradationStatus = Literal["absorbed", "degraded gracefully", "not graceful"]


@dataclass(frozen=True)
class Degradation:
    status: DegradationStatus
    reason: str
    outside_slo_seconds: float
    worst: WorstBucket | None
    budget: Detail

    def to_record(self) -> DegradationRecord:
        return DegradationRecord(
            status=self.status,
            reason=self.reason,
            outside_slo_seconds=self.outside_slo_seconds,
            worst_bucket=self.worst,
            budget=self.budget,
        )


def _error_ratio(bucket: Bucket) -> float:
    return 1.0 if not bucket.requests else bucket.failures / bucket.requests


def _beyond(bucket: Bucket, budget: DegradationBudget) -> list[str]:
    """What of the bucket is beyond the budget (empty: within it)."""
    found = []
    ratio = _error_ratio(bucket)
    if ratio > budget.max_error_ratio:
        found.append(f"error ratio {ratio:.0%} > {budget.max_error_ratio:.0%}")
    if budget.max_p95 is not None and bucket.p95 is not None and bucket.p95 > budget.max_p95:
        found.append(f"p95 {format_seconds(bucket.p95, 0.01)} > {format_seconds(budget.max_p95)}")
    quality = bucket.quality if bucket.requests else 0.0
    if budget.quality_floor is not None and (quality is None or quality < budget.quality_floor):
        shown = "none" if quality is None else f"{quality:.2f}"
        found.append(f"quality {shown} < {budget.quality_floor:.2f}")
    return found


def _severity(bucket: Bucket) -> tuple[float, float, float]:
    quality = bucket.quality if bucket.requests else 0.0
    return (_error_ratio(bucket), bucket.p95 or 0.0, -(quality if quality is not None else 0.0))


def judge_degradation(
    buckets: Sequence[Bucket],
    t_fault: float,
    window_end: float,
    rule: HealthRule,
    budget: DegradationBudget,
    recovered_within_rto: bool,
) -> Degradation:
    window = [b for b in buckets if b.end > t_fault and b.start < window_end]
    budget_record: Detail = {
        "max_error_ratio": budget.max_error_ratio,
        "max_p95_seconds": budget.max_p95,
        "quality_floor": budget.quality_floor,
        "for_seconds": budget.for_,
    }
    outside = [b for b in window if not is_healthy(b, rule)]
    seconds = round(sum(b.width for b in outside), 3)
    if not window:
        return Degradation("not graceful", "no bucket was recorded during the fault", 0.0,
                           None, budget_record)  # fmt: skip
    worst_bucket = max(outside or window, key=_severity)
    quality = worst_bucket.quality if worst_bucket.requests else None
    offset = round(worst_bucket.start - t_fault, 3)
    worst = WorstBucket(
        at_seconds=offset,
        error_ratio=round(_error_ratio(worst_bucket), 4),
        p95_seconds=worst_bucket.p95,
        quality=None if quality is None else round(quality, 4),
    )
    at = f"+{format_seconds(max(0.0, offset), worst_bucket.width)}"
    if not outside:
        return Degradation("absorbed", "every bucket during the fault stayed inside the SLO "
                           f"(worst at {at}: {worst.error_ratio:.0%} errors)", 0.0, worst,
                           budget_record)  # fmt: skip
    beyond = [(b, _beyond(b, budget)) for b in outside]
    beyond = [(b, what) for b, what in beyond if what]
    if beyond:
        bucket, what = max(beyond, key=lambda item: _severity(item[0]))
        when = f"+{format_seconds(max(0.0, bucket.start - t_fault), bucket.width)}"
        return Degradation("not graceful", f"beyond the budget at {when}: {'; '.join(what)}",
                           seconds, worst, budget_record)  # fmt: skip
    if seconds > budget.for_:
        return Degradation("not graceful", f"outside the SLO for {format_seconds(seconds)}, "
                           f"the budget allows {format_seconds(budget.for_)}", seconds, worst,
                           budget_record)  # fmt: skip
    if not recovered_within_rto:
        return Degradation("not graceful", "inside the budget, but not recovered within the "
                           "RTO", seconds, worst, budget_record)  # fmt: skip
    return Degradation("degraded gracefully", f"outside the SLO for {format_seconds(seconds)} "
                       f"(budget {format_seconds(budget.for_)}), never beyond the budget; worst "
                       f"at {at}: {worst.error_ratio:.0%} errors", seconds, worst,
                       budget_record)  # fmt: skip
