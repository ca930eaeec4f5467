"""The single run's ``report.html``: built from the run directory's files only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from aidrill import _evidence as evidence
from aidrill._durations import format_measured, format_seconds
from aidrill.errors import EvidenceError
from aidrill.report._chart import timeline_svg
from aidrill.report._relapse import relapse_text

_ENV = Environment(
    loader=PackageLoader("aidrill.report", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
# One way to write a duration in every page: ``3.7 s``, ``20 s``, ``5 min``.
_ENV.filters["seconds"] = format_seconds
_ENV.filters["measured"] = format_measured
_ENV.filters["relapses"] = relapse_text

_TIMELINE_KINDS = {
    "run_started": "run started",
    "load_started": "load started",
    "preflight_failed": "pre-flight: target not nominal",
    "target_healed": "target healed before the run",
    "fault_started": "fault action started",
    "fault_injected": "fault injected",
    "fault_failed": "fault NOT injected",
    "fault_action_ended": "fault action ended",
    "rollbacks_started": "rollbacks started",
    "rollback_ran": "rollback ran",
    "postflight_failed": "target not nominal after the rollbacks",
    "target_reset": "target reset after the rollbacks",
    "experiment_ended": "experiment ended",
    "load_stopped": "load stopped",
    "lab:router_switched": "lab: router switched",
    "lab:provisioning_refused": "lab: provisioning refused",
    "target_activity": "target activity (its own API)",
    "lab:serving_capacity_lost": "lab: serving capacity lost",
    "lab:serving_capacity_restored": "lab: serving capacity restored",
    "lab:region_failed": "lab: region failed",
    "lab:node_killed": "lab: GPU node killed",
}


def render_run_page(run_dir: Path) -> str:
    run_result = evidence.read_result(run_dir)
    try:
        plan = yaml.safe_load((run_dir / evidence.PLAN_FILE).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EvidenceError(f"cannot read run evidence: {exc}", file=run_dir) from exc
    buckets = evidence.read_timeline(run_dir)
    events = evidence.read_events(run_dir)
    t_fault = run_result.fault_at
    window_end = run_result.observation_end
    recovered_at = run_result.inference_recovered_at
    slo = (plan or {}).get("slo", {})
    from aidrill._durations import parse_duration

    chart = timeline_svg(
        buckets,
        t_fault,
        window_end,
        recovered_at,
        parse_duration(slo.get("p95_latency", 0.5)),
        float(slo.get("quality_floor", 0.0)),
        evidence.read_timeline(run_dir, series="search"),
        _lag_series(run_dir),
    )
    timeline = [
        {
            "time": _iso(e.time),
            "offset": None if t_fault is None else round(e.time - t_fault, 2),
            "what": _TIMELINE_KINDS[e.kind],
            "detail": _detail(e.data),
        }
        for e in events
        if e.kind in _TIMELINE_KINDS
    ]
    return _ENV.get_template("run.html.j2").render(
        result=run_result.record, chart=Markup(chart), timeline=timeline, buckets=len(buckets)
    )


def write_run_report(run_dir: Path) -> Path:
    path = run_dir / evidence.REPORT_FILE
    evidence.write_new_file(path, render_run_page(run_dir))
    return path


def _iso(epoch: float) -> str:
    from aidrill.measure import iso

    return iso(epoch) or ""


def _detail(data: dict[str, Any]) -> str:
    keep = ("activity", "source", "action", "status", "region", "node", "reason", "cause",
            "serving", "nominal", "error")  # fmt: skip
    return ", ".join(f"{k}={data[k]}" for k in keep if data.get(k) is not None)


def _lag_series(run_dir: Path) -> list[tuple[float, float | None, float | None]]:
    records, _ = evidence.read_jsonl(run_dir / evidence.COMPONENTS_FILE)
    return [
        (
            float(r["time"]),
            r.get("s3_backlog_seconds"),
            r.get("feature_replica_lag_seconds"),
        )
        for r in records
        if r.get("component") == "replication-lag" and "time" in r
    ]
