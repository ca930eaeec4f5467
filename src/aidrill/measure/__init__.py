"""Measurement: pure functions from evidence records to RTO, RPO and verdicts.

Nothing here does I/O or imports the run, load, lab or report stages.
"""

from aidrill.measure._blind import Blind, HealthSample, served_blind
from aidrill.measure._coverage import ApparatusStop, Gap, find_gaps, record_gaps
from aidrill.measure._degradation import Degradation, judge_degradation
from aidrill.measure._histogram import LatencyHistogram, merge_histograms
from aidrill.measure._line import Line as EvidenceLine
from aidrill.measure._phases import PHASES, Phase, recovery_phases
from aidrill.measure._records import Bucket, Event, parse_records
from aidrill.measure._recovery import (
    BucketState,
    HealthRule,
    RecoveryMeasurement,
    bucket_state,
    is_healthy,
    measure_recovery,
)
from aidrill.measure._rpo import (
    ArtifactVersions,
    CanaryWrite,
    RpoMeasurement,
    Sample,
    artifact_rpo,
    feature_store_rpo,
    judge_rpo,
    pipeline_rpo,
    probe_buckets,
    registry_rpo,
    vector_canary_rpo,
)
from aidrill.measure._run import (
    ACTIVITIES_READ,
    ACTIVITY_EVENT,
    GROUND_TRUTH_PREFIX,
    ComponentResult,
    Coverage,
    RunEvaluation,
    TierEvidence,
    evaluate_run,
    health_rule_for,
    recovered_since_last_fault,
)
from aidrill.measure._validity import InvalidReason, Validity, judge_validity
from aidrill.measure._verdict import Verdict, VerdictStatus, judge_rto
from aidrill.measure._wire import SCHEMA as RESULT_SCHEMA
from aidrill.measure._wire import (
    Achieved,
    ComponentRecord,
    Episode,
    ParticipantRecord,
    ResultRecord,
    epoch,
    iso,
)
from aidrill.measure._wire import schema as result_json_schema

__all__ = [
    "ACTIVITIES_READ",
    "ACTIVITY_EVENT",
    "GROUND_TRUTH_PREFIX",
    "PHASES",
    "RESULT_SCHEMA",
    "Achieved",
    "ApparatusStop",
    "ArtifactVersions",
    "Blind",
    "Bucket",
    "BucketState",
    "CanaryWrite",
    "ComponentRecord",
    "ComponentResult",
    "Coverage",
    "Degradation",
    "Episode",
    "Event",
    "EvidenceLine",
    "Gap",
    "HealthRule",
    "HealthSample",
    "InvalidReason",
    "LatencyHistogram",
    "ParticipantRecord",
    "Phase",
    "RecoveryMeasurement",
    "ResultRecord",
    "RpoMeasurement",
    "RunEvaluation",
    "Sample",
    "TierEvidence",
    "Validity",
    "Verdict",
    "VerdictStatus",
    "artifact_rpo",
    "bucket_state",
    "epoch",
    "evaluate_run",
    "feature_store_rpo",
    "find_gaps",
    "health_rule_for",
    "is_healthy",
    "iso",
    "judge_degradation",
    "judge_rpo",
    "judge_rto",
    "judge_validity",
    "measure_recovery",
    "merge_histograms",
    "parse_records",
    "pipeline_rpo",
    "probe_buckets",
    "record_gaps",
    "recovered_since_last_fault",
    "recovery_phases",
    "registry_rpo",
    "result_json_schema",
    "served_blind",
    "vector_canary_rpo",
]
