"""Measurement: pure functions from evidence records to RTO, RPO and verdicts.

Nothing here does I/O or imports the run, load, lab or report stages.
"""

from aidrill.measure._histogram import LatencyHistogram, merge_histograms
from aidrill.measure._records import Bucket, Event
from aidrill.measure._recovery import (
    HealthRule,
    RecoveryMeasurement,
    is_healthy,
    measure_recovery,
)
from aidrill.measure._run import (
    GROUND_TRUTH_PREFIX,
    ComponentResult,
    RunEvaluation,
    evaluate_run,
    health_rule_for,
    iso,
)
from aidrill.measure._verdict import Verdict, VerdictStatus, judge_rto

__all__ = [
    "GROUND_TRUTH_PREFIX",
    "Bucket",
    "ComponentResult",
    "Event",
    "HealthRule",
    "LatencyHistogram",
    "RecoveryMeasurement",
    "RunEvaluation",
    "Verdict",
    "VerdictStatus",
    "evaluate_run",
    "health_rule_for",
    "is_healthy",
    "iso",
    "judge_rto",
    "measure_recovery",
    "merge_histograms",
]
