"""``result.json`` as a typed record: every field a run writes, owned both ways.

The run builds a :class:`ResultRecord` when it ends and writes ``to_json()``; a report
or run page reads a file back with :meth:`ResultRecord.parse`, which refuses what does
not fit (an edited file with a figure turned into a word, a key nobody writes). The
JSON Schema shipped for auditors' tools (``aidrill/schemas/result.schema.json``) is
generated from these models, so file, code and schema cannot drift apart.

A field is written only when the measurement has it (``exclude_unset``): a component
the load never reached has no relapses, not ``"relapses": null``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from aidrill._json import JsonOut
from aidrill._typed_files import misfit, shipped_schema

SCHEMA: Literal["aidrill.result/2"] = "aidrill.result/2"

Verdict = Literal["met", "missed", "inconclusive", "not measured"]
Seconds = float
Instant = str  # ISO 8601, UTC, milliseconds
Detail = dict[str, JsonValue]  # what a tier's own measurement says it read


def iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def epoch(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class _Closed(BaseModel):
    """A record whose keys are all known: anything else is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Open(BaseModel):
    """A record that carries an event's own fields beside the ones named here."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Gap(_Closed):
    from_: Instant | None = Field(alias="from")
    to: Instant | None
    seconds: Seconds | None


class Relapse(_Closed):
    from_: Instant | None = Field(alias="from")
    to: Instant | None
    from_fault_seconds: Seconds | None
    seconds: Seconds | None


class PhaseRecord(_Closed):
    phase: str
    from_fault_seconds: Seconds
    seconds: Seconds
    evidence: str
    reference_seconds: Seconds | None = None


class Episode(_Closed):
    """One fault of a run that injected several: judged up to the next fault, or
    superseded by it."""

    fault: str | None
    injected_at: Instant | None
    impact: bool
    rto_seconds: Seconds | None
    recovered: bool | None
    observation_window_seconds: Seconds | None
    provable_until_seconds: Seconds | None
    superseded_by: str | None = None


class BlindRecord(_Closed):
    """How long the target served users badly while its own health said healthy."""

    measured: bool
    seconds: Seconds | None
    detected: bool
    reaction: str
    window_seconds: Seconds
    limit_seconds: Seconds | None
    users_hurt: bool
    over_limit: bool
    health_said_healthy: Seconds | None
    health_samples: int
    summary: str | None = None


class WorstBucket(_Closed):
    at_seconds: Seconds
    error_ratio: float
    p95_seconds: Seconds | None
    quality: float | None


class DegradationRecord(_Closed):
    status: str
    reason: str
    outside_slo_seconds: Seconds
    worst_bucket: WorstBucket | None
    budget: Detail


class Achieved(_Closed):
    """What the evidence measured of one component (figures in seconds from the fault)."""

    rto_seconds: Seconds | None = None
    recovered: bool | None = None
    impact: bool | None = None
    detection_delay_seconds: Seconds | None = None
    time_to_impact_seconds: Seconds | None = None
    recovery_after_impact_seconds: Seconds | None = None
    first_unhealthy: Instant | None = None
    first_success: Instant | None = None
    recovered_at: Instant | None = None
    observation_window_seconds: Seconds | None = None
    provable_until_seconds: Seconds | None = None
    ruled_out_until_seconds: Seconds | None = None
    sustain_seconds: Seconds | None = None
    detected_at: Instant | None = None
    resolution_seconds: Seconds | None = None
    fault_at: Instant | None = None
    coverage_gaps: list[Gap] | None = None
    relapses: list[Relapse] | None = None
    phases: list[PhaseRecord] | None = None
    phase_over_reference: str | None = None
    episodes: list[Episode] | None = None
    blind: BlindRecord | None = None
    recall_before_fault: float | None = None
    recall_after_recovery: float | None = None
    worst_freshness_seconds: Seconds | None = None
    freshness_within_rpo: bool | None = None
    rpo_seconds: Seconds | Literal["lost"] | None = None
    rpo_explanation: str | None = None
    rpo_detail: Detail | None = None
    rpo_at_least: bool | None = None


class ComponentTarget(_Closed):
    rto_seconds: Seconds
    rpo_seconds: Seconds | None


class ComponentRecord(_Closed):
    """One component of the plan as the run measured it against its targets."""

    name: str
    tier: str
    target: ComponentTarget
    rationale: str | None
    achieved: Achieved
    verdict: Verdict
    explanation: str
    rto_verdict: Verdict
    rpo_verdict: Verdict | None
    cause: str | None
    degradation: DegradationRecord | None

    def to_json(self) -> dict[str, JsonOut]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class InvalidReasonRecord(_Closed):
    what: str
    activity: str | None
    error: JsonValue
    reason: str


class ParticipantRecord(_Closed):
    name: str
    role: str
    independent: bool = False


class TargetCheck(_Open):
    """Pre-flight, heal, post-flight or reset of the target, with what it found."""

    time: Instant | None
    check: str


class Interruption(_Closed):
    time: Instant | None
    signal: JsonValue
    reason: JsonValue


class Coverage(_Closed):
    min_answers: dict[str, int]
    grace_seconds: Seconds


class GroundTruth(_Closed):
    """The target's own account, for tests and benchmarks only: never measured from."""

    source: str | None
    rto_seconds: Seconds | None
    blind_seconds: Seconds | None


class Rollback(_Closed):
    activity: JsonValue
    status: JsonValue
    error: JsonValue


class RecoveryStep(_Open):
    time: Instant | None
    what: str


class ResultRecord(_Closed):
    """One run's ``result.json``."""

    schema_: Literal["aidrill.result/2"] = Field(default=SCHEMA, alias="schema")
    run_id: str
    experiment: str
    test_type: str
    target: str | None
    plain: bool
    system: str
    status: str
    deviated: bool
    valid: bool
    invalid_reasons: list[InvalidReasonRecord]
    target_checks: list[TargetCheck]
    participants: list[ParticipantRecord]
    abort_reason: str | None
    deviations: list[str]
    interruptions: list[Interruption]
    started: Instant | None
    ended: Instant | None
    fault_injected: Instant | None
    observation_end: Instant | None
    slo: Detail
    coverage: Coverage
    components: list[ComponentRecord]
    summary: dict[Verdict, int]
    ground_truth: GroundTruth
    rollbacks: list[Rollback]
    recoveries: list[RecoveryStep]
    notes: list[str]

    @property
    def fault_at(self) -> float | None:
        return epoch(self.fault_injected)

    @property
    def observation_end_at(self) -> float | None:
        return epoch(self.observation_end)

    @property
    def inference_recovered_at(self) -> float | None:
        """The instant of sustained recovery of the inference tier, if it recovered."""
        for component in self.components:
            achieved = component.achieved
            if component.tier == "inference" and achieved.rto_seconds is not None:
                anchor = epoch(achieved.fault_at) or self.fault_at
                return None if anchor is None else anchor + achieved.rto_seconds
        return None

    def to_json(self) -> dict[str, JsonOut]:
        """The record as result.json holds it (the wire form; the one place it is made)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    @classmethod
    def parse(cls, record: object) -> ResultRecord:
        """A result.json's content, typed; ``ValueError`` naming the first field that
        does not fit (and how many others do not)."""
        try:
            return cls.model_validate(record)
        except ValidationError as exc:
            raise misfit(exc, "the record") from None


def schema() -> dict[str, JsonOut]:
    """The JSON Schema of result.json, as shipped in ``aidrill/schemas/``."""
    return shipped_schema(ResultRecord, "result.schema.json", "aidrill run result (result.json)")
