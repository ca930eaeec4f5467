"""result.json and report.html of a run, computed from its evidence files only."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml

from aidrill import _evidence as evidence
from aidrill._documents import read_document
from aidrill.errors import EvidenceError
from aidrill.experiment import AidrillExtension, find_aidrill_extension
from aidrill.measure import evaluate_run, iso
from aidrill.plan import Plan, plan_from_document

logger = logging.getLogger(__name__)


def read_run_inputs(run_dir: Path) -> tuple[Plan, AidrillExtension, str]:
    """The plan snapshot, the aidrill extension and the title a run directory holds."""
    plan = plan_from_document(read_document(run_dir / evidence.PLAN_FILE))
    try:
        experiment = yaml.safe_load((run_dir / evidence.EXPERIMENT_FILE).read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EvidenceError(f"cannot read the experiment copy: {exc}", file=run_dir) from exc
    found = find_aidrill_extension(experiment or {})
    if found is None:
        raise EvidenceError("the experiment copy has no aidrill extension", file=run_dir)
    extension = AidrillExtension.model_validate(found[1])
    return plan, extension, str(experiment.get("title", run_dir.name))


def write_run_result(
    run_dir: Path, status: str, deviated: bool, abort_reason: str | None = None
) -> dict[str, Any]:
    """Measure every component from the run's evidence and write result.json."""
    plan, extension, title = read_run_inputs(run_dir)
    events = evidence.read_events(run_dir)
    buckets = evidence.read_timeline(run_dir)
    sustain = extension.sustain or plan.slo.sustain
    evaluation = evaluate_run(plan, extension.components, events, buckets, sustain)
    started = next((e.time for e in events if e.kind == "run_started"), None)
    interruptions = [
        {"time": iso(e.time), "signal": e.data.get("signal"), "reason": e.data.get("reason")}
        for e in events
        if e.kind in ("interrupted", "guardrail_tripped")
    ]
    result = {
        "schema": "aidrill.result/1",
        "run_id": run_dir.name,
        "experiment": title,
        "test_type": extension.test_type,
        "target": extension.target,
        "system": plan.system,
        "status": status,
        "deviated": deviated,
        "abort_reason": abort_reason,
        "interruptions": interruptions,
        "started": iso(started),
        "ended": iso(time.time()),
        "fault_injected": iso(evaluation.t_fault),
        "observation_end": iso(evaluation.window_end),
        "slo": plan.slo.model_dump(mode="json"),
        "components": [c.to_record() for c in evaluation.components],
        "summary": evaluation.counts(),
        "ground_truth": {
            "source": extension.target,
            "rto_seconds": None
            if evaluation.ground_truth_rto is None
            else round(evaluation.ground_truth_rto, 3),
        },
        "rollbacks": [
            {"activity": e.data.get("activity"), "status": e.data.get("status")}
            for e in events
            if e.kind == "rollback_ran"
        ],
        "notes": evaluation.notes,
    }
    evidence.write_new_file(run_dir / evidence.RESULT_FILE, json.dumps(result, indent=2))
    return result


def write_run_page(run_dir: Path) -> None:
    from aidrill.report import write_run_report

    write_run_report(run_dir)
