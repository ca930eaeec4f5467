"""RPO per stateful component, and probe series as buckets: DESIGN.md "Measurement".

- feature store: the canary writer's acknowledged writes against the ones that survive
  in the store serving after the fault. RPO = time of the newest acknowledged write
  that was lost - time of the newest surviving write before it (the span of
  acknowledged data lost; the newest lost write marks the moment the primary went);
  0 when every acknowledged write survived.
- vector index, training, evaluation: t_fault - the time the restored state is as of
  (the snapshot or checkpoint actually restored), read from the serving tier.
- model artifacts: versions lost (present before the run, gone after it) and the age
  of the newest published version present in the DR region.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aidrill._durations import format_duration
from aidrill.measure._records import Bucket
from aidrill.measure._verdict import Verdict


@dataclass(frozen=True)
class Sample:
    """One probe of one component at one instant."""

    time: float
    component: str
    ok: bool
    quality: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Sample:
        data = {k: v for k, v in record.items() if k not in ("time", "component", "ok", "quality")}
        quality = record.get("quality")
        return cls(
            float(record["time"]),
            str(record["component"]),
            bool(record.get("ok")),
            None if quality is None else float(quality),
            data,
        )


@dataclass(frozen=True)
class RpoMeasurement:
    seconds: float | None
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


def probe_buckets(samples: Iterable[Sample], component: str, width: float) -> list[Bucket]:
    """A component's probe samples as buckets (requests = probes, quality = mean score).

    Probes carry no user latency, so p95 is 0; health is success and quality.
    """
    grouped: dict[int, list[Sample]] = {}
    for sample in samples:
        if sample.component == component:
            grouped.setdefault(int(sample.time // width), []).append(sample)
    buckets = []
    for index in sorted(grouped):
        group = grouped[index]
        ok = [s for s in group if s.ok]
        buckets.append(
            Bucket(
                start=index * width,
                width=width,
                requests=len(group),
                failures=len(group) - len(ok),
                p50=0.0,
                p95=0.0,
                p99=0.0,
                max=0.0,
                correct=sum(s.quality if s.quality is not None else 1.0 for s in ok),
                scored=len(ok),
                series=component,
            )
        )
    return buckets


def feature_store_rpo(
    canary: Sequence[dict[str, Any]], surviving: Sequence[int] | None, audited_at: float
) -> RpoMeasurement:
    """Only writes made before the audit read the store back can have survived in it."""
    if surviving is None:
        return RpoMeasurement(None, "the surviving canary writes could not be read back")
    acknowledged = {
        int(r["seq"]): float(r["time"])
        for r in canary
        if r.get("ok") and float(r["time"]) < audited_at
    }
    if not acknowledged:
        return RpoMeasurement(None, "no canary write was acknowledged")
    kept = set(surviving)
    lost = sorted(seq for seq in acknowledged if seq not in kept)
    detail: dict[str, Any] = {"acknowledged": len(acknowledged), "lost": len(lost)}
    if not lost:
        return RpoMeasurement(0.0, "every acknowledged canary write survived", detail)
    newest_lost = lost[-1]
    before = [seq for seq in kept if seq < newest_lost and seq in acknowledged]
    if not before:
        return RpoMeasurement(None, "no acknowledged canary write survived", detail)
    newest_kept = max(before)
    seconds = acknowledged[newest_lost] - acknowledged[newest_kept]
    detail.update(
        newest_surviving_seq=newest_kept,
        newest_lost_seq=newest_lost,
        newest_surviving_at=acknowledged[newest_kept],
        loss_at=acknowledged[newest_lost],
    )
    return RpoMeasurement(
        seconds,
        f"{len(lost)} acknowledged canary writes lost, spanning {format_duration(seconds)}",
        detail,
    )


def restored_state_rpo(
    samples: Iterable[Sample], component: str, t_fault: float, as_of_key: str
) -> RpoMeasurement:
    """For tiers that recover from a snapshot or checkpoint: how old the restored state
    was at the fault. The restored state is the first one served after the fault whose
    origin (region, source) differs from what served before it."""
    series = sorted((s for s in samples if s.component == component), key=lambda s: s.time)
    before = [s for s in series if s.time < t_fault and s.ok]
    origin = _origin(before[-1]) if before else None
    for sample in series:
        if sample.time < t_fault or not sample.ok:
            continue
        if _origin(sample) == origin:
            continue
        as_of = _as_of(sample, as_of_key)
        if as_of is None:
            continue
        seconds = max(0.0, t_fault - as_of)
        return RpoMeasurement(
            seconds,
            f"restored state was {format_duration(seconds)} old at the fault",
            {"restored_as_of": as_of, "origin": _origin(sample)},
        )
    return RpoMeasurement(0.0, "the state serving before the fault still serves: nothing lost")


def _origin(sample: Sample) -> tuple[Any, Any]:
    source = sample.data.get("source")
    if source is None:
        resumed = sample.data.get("resumed_from") or {}
        source = resumed.get("key")
    return sample.data.get("region"), source


def _as_of(sample: Sample, key: str) -> float | None:
    value: Any = sample.data
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def artifact_rpo(
    versions: dict[str, Any], primary: str, dr: str, t_fault: float | None
) -> RpoMeasurement:
    """Versions lost over the run, and how far the DR region's copy lags behind."""
    before = versions.get("before", {}).get("regions", {})
    after = versions.get("after", {}).get("regions", {})
    if not before or not after:
        return RpoMeasurement(None, "the artifact versions were not listed before and after")
    lost: list[str] = []
    for region in (primary, dr):
        had = {v["version_id"] for v in before.get(region, {}).get("versions", [])}
        has = {v["version_id"] for v in after.get(region, {}).get("versions", [])}
        lost += sorted(had - has)
    published = [v for v in after.get(primary, {}).get("versions", []) if v.get("created_at")]
    in_dr = after.get(dr, {}).get("versions", [])
    dr_sources = {v.get("source_version") for v in in_dr}
    newest = max(published, key=lambda v: v["created_at"]) if published else None
    age = None
    if newest is not None and newest["version_id"] not in dr_sources and in_dr:
        present = max(v["created_at"] for v in in_dr if v.get("created_at"))
        age = max(0.0, (t_fault or newest["created_at"]) - present)
    detail = {"versions_lost": len(lost), "lost": lost, "dr_lag_seconds": age}
    seconds = age or 0.0
    if lost:
        reason = f"{len(lost)} artifact versions lost"
    elif age:
        reason = f"0 versions lost; the DR region's newest version is {format_duration(age)} old"
    else:
        reason = "0 versions lost; the DR region holds the newest version"
    # A lost version is lost for good: no window of time makes up for it.
    return RpoMeasurement(float("inf") if lost else seconds, reason, detail)


def judge_rpo(target: float | None, measurement: RpoMeasurement | None) -> Verdict | None:
    """None for a stateless component (no RPO target)."""
    if target is None:
        return None
    if measurement is None or measurement.seconds is None:
        why = measurement.reason if measurement else "this run recorded no RPO evidence"
        return Verdict("not measured", f"RPO not measured: {why}")
    goal = format_duration(target)
    if measurement.seconds == float("inf"):
        return Verdict("missed", f"RPO missed: {measurement.reason}")
    achieved = format_duration(measurement.seconds)
    if measurement.seconds <= target:
        return Verdict("met", f"RPO {achieved} within the {goal} target ({measurement.reason})")
    return Verdict("missed", f"RPO {achieved} over the {goal} target ({measurement.reason})")
