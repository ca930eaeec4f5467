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
from aidrill.measure._rpo import (
    RpoMeasurement,
    Sample,
    artifact_rpo,
    feature_store_rpo,
    judge_rpo,
    probe_buckets,
    restored_state_rpo,
)
from aidrill.measure._run import (
    GROUND_TRUTH_PREFIX,
    ComponentResult,
    RunEvaluation,
    TierEvidence,
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
    "RpoMeasurement",
    "RunEvaluation",
    "Sample",
    "TierEvidence",
    "Verdict",
    "VerdictStatus",
    "artifact_rpo",
    "evaluate_run",
    "feature_store_rpo",
    "health_rule_for",
    "is_healthy",
    "iso",
    "judge_rpo",
    "judge_rto",
    "measure_recovery",
    "merge_histograms",
    "probe_buckets",
    "restored_state_rpo",
]
