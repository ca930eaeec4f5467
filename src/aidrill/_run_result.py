"""What a run measured, computed from its evidence files only: the run writes it as
result.json when it ends, and a report computes it again rather than believe the file."""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from aidrill import _evidence as evidence
from aidrill._documents import UnreadableFile, read_bytes, read_document
from aidrill.errors import EvidenceError
from aidrill.experiment import AidrillExtension, find_aidrill_extension
from aidrill.load import expected_answers, min_answers
from aidrill.measure import (
    GROUND_TRUTH_PREFIX,
    RESULT_SCHEMA,
    ArtifactVersions,
    Bucket,
    CanaryWrite,
    Event,
    EvidenceLine,
    HealthSample,
    ResultRecord,
    Sample,
    TierEvidence,
    evaluate_run,
    iso,
    parse_records,
    recovered_since_last_fault,
)
from aidrill.plan import Plan, plan_from_document
from aidrill.probes import decisive_outcomes

logger = logging.getLogger(__name__)
_Record = TypeVar("_Record")


def read_run_inputs(run_dir: Path) -> tuple[Plan, AidrillExtension | None, str]:
    """The plan snapshot, the aidrill extension (None: a plain experiment) and the title
    a run directory holds."""
    plan_path = run_dir / evidence.PLAN_FILE
    try:  # within the same bounds read_document keeps
        digest = hashlib.sha256(read_bytes(plan_path)).hexdigest()
    except (OSError, UnreadableFile):
        plan = plan_from_document(read_document(plan_path))  # it says what is wrong
    else:
        plan = _plan_of(digest, plan_path)
    try:
        text = (run_dir / evidence.EXPERIMENT_FILE).read_text("utf-8")
        experiment = copy.deepcopy(_experiment_of(text))
    except (OSError, yaml.YAMLError) as exc:
        raise EvidenceError(f"cannot read the experiment copy: {exc}", file=run_dir) from exc
    found = find_aidrill_extension(experiment or {})
    extension = AidrillExtension.model_validate(found[1]) if found else None
    return plan, extension, str((experiment or {}).get("title", run_dir.name))


# A quarter's runs mostly hold the same plan and a dozen experiments: each is parsed once
# per process. Keyed by content, so a run whose copy differs gets its own.
_PLANS: dict[str, Plan] = {}


def _plan_of(digest: str, path: Path) -> Plan:
    if digest not in _PLANS:
        if len(_PLANS) >= 64:
            _PLANS.clear()
        _PLANS[digest] = plan_from_document(read_document(path))
    return _PLANS[digest]


@functools.lru_cache(maxsize=256)
def _experiment_of(text: str) -> Any:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def compute_run_result(
    run_dir: Path,
    status: str,
    deviated: bool,
    abort_reason: str | None = None,
    ended: str | None = None,
) -> ResultRecord:
    """What result.json holds, measured from the run's evidence files alone (the plan
    and experiment copies, events, timeline, probes and canaries): the run writes it
    when it ends, and a report computes it again rather than believe the file.
    ``ValueError`` if the measurement made a record its schema refuses (a bug:
    ``result_document`` gives the same unchecked)."""
    return ResultRecord.parse(result_document(run_dir, status, deviated, abort_reason, ended))


def result_document(
    run_dir: Path,
    status: str,
    deviated: bool,
    abort_reason: str | None = None,
    ended: str | None = None,
) -> dict[str, Any]:
    """``compute_run_result`` before its record is checked against its schema."""
    plan, extension, title = read_run_inputs(run_dir)
    events = evidence.read_events(run_dir)
    timelines = evidence.read_timelines(run_dir)
    buckets = timelines.get("inference", [])
    sustain = (extension.sustain if extension else None) or plan.slo.sustain
    tiers = read_tier_evidence(run_dir, plan, timelines.get("search", []))
    components = extension.components if extension else []
    chaos = extension is not None and extension.test_type == "chaos"
    floors = coverage_floors(plan, extension)
    evaluation = evaluate_run(
        plan, components, events, buckets, sustain, tiers, degradation=chaos, min_answers=floors
    )
    started = next((e.time for e in events if e.kind == "run_started"), None)
    interruptions = [
        {"time": iso(e.time), "signal": e.data.get("signal"), "reason": e.data.get("reason")}
        for e in events
        if e.kind in ("interrupted", "guardrail_tripped", "apparatus_interrupt")
    ]
    validity = evaluation.validity
    result = {
        "schema": RESULT_SCHEMA,
        "run_id": run_dir.name,
        "experiment": title,
        "test_type": extension.test_type if extension else "chaos",
        "target": extension.target if extension else None,
        "plain": extension is None,
        "system": plan.system,
        "status": status,
        "deviated": deviated,
        "valid": validity.valid,
        "invalid_reasons": [reason.to_record() for reason in validity.reasons],
        "target_checks": _target_checks(events),
        "participants": next(
            (e.data.get("participants") or [] for e in events if e.kind == "run_started"), []
        ),
        "abort_reason": abort_reason,
        "deviations": _deviations(run_dir, events) if deviated else [],
        "interruptions": interruptions,
        "started": iso(started),
        "ended": ended or iso(time.time()),
        "fault_injected": iso(evaluation.t_fault),
        "observation_end": iso(evaluation.window_end),
        "slo": plan.slo.model_dump(mode="json"),
        "coverage": {"min_answers": floors, "grace_seconds": plan.slo.coverage_grace},
        "components": [c.to_record().to_json() for c in evaluation.components],
        "summary": evaluation.counts(),
        "ground_truth": {
            "source": extension.target if extension else None,
            "rto_seconds": None
            if evaluation.ground_truth_rto is None
            else round(evaluation.ground_truth_rto, 3),
            "blind_seconds": None
            if evaluation.ground_truth_blind is None
            else round(evaluation.ground_truth_blind, 3),
        },
        "rollbacks": [
            {
                "activity": e.data.get("activity"),
                "status": e.data.get("status"),
                "error": e.data.get("error"),
            }
            for e in events
            if e.kind == "rollback_ran"
        ],
        "recoveries": _recoveries(events),
        "notes": evaluation.notes,
    }
    return result


def recovered_so_far(run_dir: Path, plan: Plan, extension: AidrillExtension) -> bool:
    """Whether the evidence written so far shows every measured component recovered from
    the latest fault and held for the sustain (see ``recovered_since_last_fault``)."""
    return recovered_since_last_fault(
        plan,
        extension.components,
        evidence.read_events(run_dir),
        evidence.read_timeline(run_dir),
        extension.sustain or plan.slo.sustain,
        read_tier_evidence(run_dir, plan),
        time.time(),
        coverage_floors(plan, extension),
    )


def coverage_floors(plan: Plan, extension: AidrillExtension | None) -> dict[str, int]:
    """The answers each load series must hold per bucket for it to count (DESIGN.md,
    coverage): the plan's ``slo.min_answers``, else a third of what the load sends."""
    if extension is None:
        return {}
    settings = extension.load
    bucket = extension.bucket or plan.slo.bucket
    expected = expected_answers(settings.users, settings.rate_per_user, bucket, search=True)
    return min_answers(expected, plan.slo.min_answers)


def _deviations(run_dir: Path, events: list[Event]) -> list[str]:
    """Each steady-state check that failed after the method, named with its figures."""
    after = next(
        (
            e.time
            for e in events
            if e.kind == "phase" and e.data.get("phase") == "steady-state-after"
        ),
        None,
    )
    records, _ = evidence.read_jsonl(run_dir / evidence.PROBES_FILE)
    found = []
    for record in records:
        if after is None or float(record.get("time") or 0) < after:
            continue
        for check in decisive_outcomes(record.get("checks") or []):
            if not check.holds:
                found.append(f"{check.check} did not hold after the method ({check.describe()})")
    return found or ["the steady-state hypothesis did not hold after the method"]


_TARGET_CHECKS = {
    "preflight": "pre-flight",
    "target_healed": "healed before the run",
    "postflight": "after the rollbacks",
    "target_reset": "reset after the rollbacks",
}


def _target_checks(events: list[Event]) -> list[dict[str, Any]]:
    """Pre-flight, heal, post-flight and reset of the target, as the evidence has them."""
    return [
        {"time": iso(e.time), "check": _TARGET_CHECKS[e.kind], **e.data}
        for e in events
        if e.kind in _TARGET_CHECKS
    ]


_RECOVERY_KINDS = {
    "vector_index_restored": "vector index restored",
    "feature_replica_promoted": "feature replica promoted",
    "feature_store_rebuilt": "online feature store rebuilt from the offline store",
    "model_artifact_recovered": "model artifact version restored",
    "model_registry_restored": "model registry restored from its copy",
    "model_alias_restored": "production alias moved back to the approved version",
    "pipeline_resumed": "pipeline resumed from checkpoint",
    "router_switched": "router switched region",
    "node_model_loaded": "GPU node loaded the model (cold start)",
    "node_boot_failed": "GPU node failed to boot",
    "node_model_unavailable": "GPU node waits for a model it can resolve and verify",
}


def _recoveries(events: list[Event]) -> list[dict[str, Any]]:
    """Recovery steps the lab's ground truth recorded during the run, for the report."""
    found = []
    for event in events:
        kind = event.kind.removeprefix(GROUND_TRUTH_PREFIX)
        if event.kind.startswith(GROUND_TRUTH_PREFIX) and kind in _RECOVERY_KINDS:
            detail = {k: v for k, v in event.data.items() if k != "when"}
            found.append({"time": iso(event.time), "what": _RECOVERY_KINDS[kind], **detail})
    return found


def read_tier_evidence(
    run_dir: Path, plan: Plan, search: list[Bucket] | None = None
) -> TierEvidence:
    """The stateful tiers' evidence files of a run (each may be absent); ``search``:
    the timeline's search series where the caller has read it already."""

    def logged(name: str, parse: Callable[[EvidenceLine], _Record]) -> list[_Record]:
        return parse_records(parse, evidence.read_jsonl(run_dir / name)[0])

    samples = logged(evidence.COMPONENTS_FILE, Sample.from_record)
    canary = logged(evidence.CANARY_FILE, CanaryWrite.from_record)
    index_canary = logged(evidence.INDEX_CANARY_FILE, CanaryWrite.from_record)
    surviving = None
    audited_at = float("inf")
    versions = ArtifactVersions()
    try:
        audit = json.loads((run_dir / evidence.CANARY_AUDIT_FILE).read_text(encoding="utf-8"))
        surviving = audit.get("surviving")
        audited_at = float(audit.get("time") or audited_at)
    except (OSError, ValueError):
        pass
    registry_canary = logged(evidence.REGISTRY_CANARY_FILE, CanaryWrite.from_record)
    registry_audit: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        registry_audit = json.loads(
            (run_dir / evidence.REGISTRY_AUDIT_FILE).read_text(encoding="utf-8")
        )
    with contextlib.suppress(OSError, ValueError):
        listed = json.loads((run_dir / evidence.ARTIFACT_VERSIONS_FILE).read_text(encoding="utf-8"))
        if isinstance(listed, dict):
            versions = ArtifactVersions.from_record(listed)
    return TierEvidence(
        health=logged(evidence.HEALTH_FILE, HealthSample.from_record),
        samples=samples,
        canary=canary,
        index_canary=index_canary,
        canary_surviving=surviving,
        canary_audited_at=audited_at,
        artifact_versions=versions,
        registry_canary=registry_canary,
        registry_surviving=registry_audit.get("surviving"),
        registry_audited_at=float(registry_audit.get("time") or float("inf")),
        search=evidence.read_timeline(run_dir, series="search") if search is None else search,
        regions=(plan.primary_region, plan.dr_region),
    )
