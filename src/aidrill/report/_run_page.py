"""The single run's ``report.html``: built from the run directory's files only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from aidrill import _evidence as evidence
from aidrill.errors import EvidenceError
from aidrill.report._chart import timeline_svg

_ENV = Environment(
    loader=PackageLoader("aidrill.report", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)

_TIMELINE_KINDS = {
    "run_started": "run started",
    "load_started": "load started",
    "fault_injected": "fault injected",
    "fault_action_ended": "fault action ended",
    "rollbacks_started": "rollbacks started",
    "rollback_ran": "rollback ran",
    "experiment_ended": "experiment ended",
    "load_stopped": "load stopped",
    "lab:router_switched": "lab: router switched",
    "lab:provisioning_refused": "lab: provisioning refused",
    "lab:serving_capacity_lost": "lab: serving capacity lost",
    "lab:serving_capacity_restored": "lab: serving capacity restored",
    "lab:region_failed": "lab: region failed",
    "lab:node_killed": "lab: GPU node killed",
}


def render_run_page(run_dir: Path) -> str:
    try:
        result = json.loads((run_dir / evidence.RESULT_FILE).read_text(encoding="utf-8"))
        plan = yaml.safe_load((run_dir / evidence.PLAN_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise EvidenceError(f"cannot read run evidence: {exc}", file=run_dir) from exc
    buckets = evidence.read_timeline(run_dir)
    events = evidence.read_events(run_dir)
    t_fault = next((e.time for e in events if e.kind == "fault_injected"), None)
    window_end = next((e.time for e in events if e.kind == "rollbacks_started"), None)
    recovered_at = inference_recovered_at(result.get("components", []), t_fault)
    slo = plan.get("slo", {})
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
        result=result, chart=Markup(chart), timeline=timeline, buckets=len(buckets)
    )


def write_run_report(run_dir: Path) -> Path:
    path = run_dir / evidence.REPORT_FILE
    evidence.write_new_file(path, render_run_page(run_dir))
    return path


def inference_recovered_at(components: list[dict[str, Any]], t_fault: float | None) -> float | None:
    """The instant of sustained recovery of the inference tier, from a result's records."""
    for component in components:
        achieved = component.get("achieved") or {}
        if component.get("tier") == "inference" and achieved.get("rto_seconds") is not None:
            anchor = _epoch(achieved.get("fault_at")) or t_fault
            return None if anchor is None else anchor + float(achieved["rto_seconds"])
    return None


def _iso(epoch: float) -> str:
    from aidrill.measure import iso

    return iso(epoch) or ""


def _detail(data: dict[str, Any]) -> str:
    keep = ("activity", "status", "region", "node", "reason", "serving", "nominal", "error")
    return ", ".join(f"{k}={data[k]}" for k in keep if data.get(k) is not None)


def _epoch(stamp: Any) -> float | None:
    from datetime import datetime

    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def _lag_series(run_dir: Path) -> list[tuple[float, float | None, float | None]]:
    records, _ = evidence.read_jsonl(run_dir / "components.jsonl")
    return [
        (
            float(r["time"]),
            r.get("s3_backlog_seconds"),
            r.get("feature_replica_lag_seconds"),
        )
        for r in records
        if r.get("component") == "replication-lag" and "time" in r
    ]
