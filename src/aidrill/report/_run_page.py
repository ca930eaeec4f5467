"""The single run's ``report.html``: built from the run directory's files only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from aidrill import _evidence as evidence
from aidrill._durations import format_measured, format_seconds
from aidrill.errors import EvidenceError
from aidrill.measure import Bucket
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
    window_end = run_result.observation_end_at
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
        result=run_result.to_json(),
        chart=Markup(chart),
        timeline=timeline,
        buckets=len(buckets),
        health_rows=_health_beside_users(run_dir, buckets, t_fault, window_end),
        served=_who_served(buckets, t_fault),
    )


@dataclass
class _Served:
    """A node the load's answers named: its first and last answer's bucket from the
    fault, and how many answers it gave."""

    node: str
    first: float
    last: float
    answers: int = 0


@dataclass(frozen=True)
class _HealthRow:
    """One bucket from the fault: what the health checks claimed beside what users got."""

    offset: float
    health: str | None
    all_passing: bool
    success: float | None
    quality: float | None
    p95: float | None


def _who_served(buckets: list[Bucket], t_fault: float | None) -> list[_Served]:
    """Per node the load's answers named (a header the server sends), in order of first
    answer."""
    seen: dict[str, _Served] = {}
    for bucket in buckets:
        if bucket.series != "inference" or t_fault is None:
            continue
        for node, count in bucket.nodes.items():
            start, end = bucket.start - t_fault, bucket.end - t_fault
            row = seen.setdefault(node, _Served(node, start, end))
            row.last = end
            row.answers += count
    return sorted(seen.values(), key=lambda r: (r.first, r.node))


_HEALTH_ROWS = 60


def _health_beside_users(
    run_dir: Path, buckets: list[Bucket], t_fault: float | None, window_end: float | None
) -> list[_HealthRow]:
    """Per bucket from the fault to the window's end: what the target's health checks
    claimed (health.jsonl) beside what users got (the timeline)."""
    records, _ = evidence.read_jsonl(run_dir / evidence.HEALTH_FILE)
    if not records or t_fault is None or window_end is None:
        return []
    rows = []
    for bucket in buckets:
        if bucket.series != "inference" or bucket.end <= t_fault or bucket.start >= window_end:
            continue
        inside = [
            r for r in records
            if bucket.start <= float(r.get("time") or 0) < bucket.end and r.get("signals")
        ]  # fmt: skip
        signals = [bool(v) for r in inside for v in dict(r["signals"]).values()]
        rows.append(_HealthRow(
            offset=round(bucket.start - t_fault, 1),
            health=None if not signals else f"{sum(signals)} of {len(signals)} passing",
            all_passing=bool(signals) and all(signals),
            success=bucket.success_ratio,
            quality=bucket.quality,
            p95=bucket.p95,
        ))  # fmt: skip
    return rows[:_HEALTH_ROWS]


def write_run_report(run_dir: Path) -> Path:
    path = run_dir / evidence.REPORT_FILE
    evidence.write_new_file(path, render_run_page(run_dir))
    return path


def _iso(epoch: float) -> str:
    from aidrill.measure import iso

    return iso(epoch) or ""


def _detail(data: Mapping[str, object]) -> str:
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
