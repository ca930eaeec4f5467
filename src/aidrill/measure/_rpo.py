"""RPO per stateful component, and probe series as buckets: DESIGN.md "Measurement".

- feature store: the canary writer's acknowledged writes against the ones that survive
  in the store serving after the fault. RPO = time of the newest acknowledged write
  that was lost - time of the newest surviving write before it (the span of
  acknowledged data lost; the newest lost write marks the moment the primary went);
  0 when every acknowledged write survived.
- vector index: canary vectors are written through the index's public API; after the
  fault, the first answer of the serving index says which it holds. RPO = t_fault -
  acknowledged time of the newest canary acknowledged before the fault that it holds.
- training, evaluation: each job's published progress, timed by the observer. RPO =
  t_fault - the time the step the job resumed from was first observed.
- model registry: canary changes (a version registered and an alias moved, every half
  second, in the primary's registry) against the ones the serving region's registry
  holds after the fault; as for the feature store, RPO = the span of acknowledged
  changes lost.
- model artifacts: versions lost (present before the run, gone after it) and the age
  of the newest published version present in the DR region.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aidrill._durations import format_seconds
from aidrill._json import JsonOut
from aidrill.measure._line import Line, maybe_number, number, text, whole
from aidrill.measure._records import Bucket
from aidrill.measure._verdict import Verdict


@dataclass(frozen=True)
class Sample:
    """One probe of one component at one instant."""

    time: float
    component: str
    ok: bool
    quality: float | None = None
    data: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Line) -> Sample:
        data = {k: v for k, v in record.items() if k not in ("time", "component", "ok", "quality")}
        return cls(
            number(record["time"]),
            str(record["component"]),
            bool(record.get("ok")),
            maybe_number(record.get("quality")),
            data,
        )


@dataclass(frozen=True)
class CanaryWrite:
    """One write a canary writer sent (a feature-store write, a registry change, an
    index vector), as its log line holds it: ``{"seq", "time", "ok", "acked"?}``.
    ``time`` is when it was sent, ``acked`` when the store answered (where recorded)."""

    seq: int
    time: float
    ok: bool
    acked: float | None = None

    @property
    def answered_at(self) -> float:
        """When the store's answer came; the send time where the writer kept no other."""
        return self.time if self.acked is None else self.acked

    @classmethod
    def from_record(cls, record: Line) -> CanaryWrite:
        """Raises KeyError, TypeError or ValueError on a line that is not a write."""
        return cls(
            whole(record["seq"]),
            number(record["time"]),
            record.get("ok") is True,
            maybe_number(record.get("acked")),
        )

    def to_record(self) -> dict[str, JsonOut]:
        record: dict[str, JsonOut] = {"seq": self.seq, "time": self.time, "ok": self.ok}
        if self.acked is not None:
            record["acked"] = self.acked
        return record


@dataclass(frozen=True)
class RpoMeasurement:
    """``at_least``: the data lost reaches back past what the run observed, so
    ``seconds`` is only a lower bound."""

    seconds: float | None
    reason: str
    detail: Mapping[str, JsonOut] = field(default_factory=dict)
    at_least: bool = False


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
    canary: Sequence[CanaryWrite], surviving: Sequence[int] | None, audited_at: float
) -> RpoMeasurement:
    """Only writes answered before the audit read the store back can have survived in it
    (``acked``, the answer's time, where the writer recorded it; else the time sent)."""
    if surviving is None:
        return RpoMeasurement(None, "the surviving canary writes could not be read back")
    acknowledged = {w.seq: w.time for w in canary if w.ok and w.answered_at < audited_at}
    if not acknowledged:
        return RpoMeasurement(None, "no canary write was acknowledged")
    kept = set(surviving)
    lost = sorted(seq for seq in acknowledged if seq not in kept)
    detail: dict[str, JsonOut] = {"acknowledged": len(acknowledged), "lost": len(lost)}
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
        f"{len(lost)} acknowledged canary writes lost, spanning {format_seconds(seconds)}",
        detail,
    )


def vector_canary_rpo(
    canary: Sequence[CanaryWrite], samples: Iterable[Sample], t_fault: float
) -> RpoMeasurement:
    """How old the newest acknowledged data was that the serving index held after the
    fault (its first answer after an unanswered probe, or the first after the fault)."""
    acked = {w.seq: w.time for w in canary if w.ok}
    before = sorted(seq for seq, at in acked.items() if at <= t_fault)
    if not before:
        return RpoMeasurement(None, "no canary vector was acknowledged before the fault")
    series = sorted((s for s in samples if s.component == "vector-index"), key=lambda s: s.time)
    served = _first_answer_after_impact([s for s in series if s.time >= t_fault])
    if served is None or served.data.get("canaries_present") is None:
        return RpoMeasurement(None, "the serving index never answered after the fault")
    ranges = _ranges(served.data["canaries_present"])
    held = [seq for seq in before if any(lo <= seq <= hi for lo, hi in ranges)]
    detail: dict[str, JsonOut] = {
        "acknowledged_before_fault": len(before),
        "lost": len(before) - len(held),
        "served_by": text(served.data.get("region")),
        "observed_at": served.time,
    }
    if not held:
        seconds = t_fault - acked[before[0]]
        return RpoMeasurement(
            seconds,
            f"none of the {len(before)} canary vectors acknowledged before the fault is "
            f"served: at least {format_seconds(seconds)} of data lost",
            detail,
            at_least=True,
        )
    newest = held[-1]
    seconds = max(0.0, t_fault - acked[newest])
    detail.update(newest_held_seq=newest, newest_held_acknowledged_at=acked[newest])
    return RpoMeasurement(
        seconds,
        f"the newest canary vector served after the fault was acknowledged "
        f"{format_seconds(seconds)} before it; {detail['lost']} acknowledged canary "
        "vectors lost",
        detail,
    )


def _ranges(value: object) -> list[tuple[int, int]]:
    """``[[lo, hi], ...]``: the canary sequence numbers an index answer held."""
    if not isinstance(value, list):
        raise TypeError("canaries_present: expected a list of [low, high] pairs")
    return [(whole(pair[0]), whole(pair[1])) for pair in value if isinstance(pair, list)]


def _first_answer_after_impact(series: list[Sample]) -> Sample | None:
    """The first sample that answers after the first that did not; with no unanswered
    sample at all, the first after the fault."""
    failed = next((i for i, s in enumerate(series) if not s.ok), None)
    start = 0 if failed is None else failed
    return next((s for s in series[start:] if s.ok), None)


def pipeline_rpo(samples: Iterable[Sample], job: str, t_fault: float) -> RpoMeasurement:
    """Work a job lost: from the moment the step it resumed from was first observed to
    the fault. No resume after the fault: it lost nothing."""
    series = sorted((s for s in samples if s.component == job), key=lambda s: s.time)
    before = [s for s in series if s.time < t_fault]
    resumes_before = before[-1].data.get("resumes") if before else None
    resumed = next(
        (
            s
            for s in series
            if s.time >= t_fault
            and s.data.get("resumes") != resumes_before
            and s.data.get("resumed_from_step") is not None
        ),
        None,
    )
    if resumed is None:
        if series and not series[-1].ok:
            return RpoMeasurement(None, f"the {job} job did not resume within the window")
        return RpoMeasurement(0.0, f"the {job} job kept running: no work lost")
    step = whole(resumed.data["resumed_from_step"])
    seen = [s.time for s in series if s.time < resumed.time and _step(s) >= step]
    if not seen:
        return RpoMeasurement(None, f"step {step} of the {job} job was never observed")
    if not any(_step(s) <= step for s in before):
        # Observation began after the job had passed that step: a lower bound only.
        seconds = max(0.0, t_fault - series[0].time)
        return RpoMeasurement(
            seconds,
            f"resumed from step {step}, reached before the run began observing: at least "
            f"{format_seconds(seconds)} of work lost",
            {"resumed_from_step": step, "observed_from": series[0].time},
            at_least=True,
        )
    seconds = max(0.0, t_fault - min(seen))
    return RpoMeasurement(
        seconds,
        f"resumed from step {step}, first observed {format_seconds(seconds)} before the fault",
        {"resumed_from_step": step, "step_first_observed_at": min(seen), "region":
         text(resumed.data.get("region"))},
    )  # fmt: skip


def _step(sample: Sample) -> int:
    value = sample.data.get("step")
    return int(value) if isinstance(value, int | float) else -1


def registry_rpo(
    canary: Sequence[CanaryWrite], surviving: Sequence[int] | None, audited_at: float
) -> RpoMeasurement:
    """The feature store's rule applied to the registry's canary changes."""
    if surviving is None:
        return RpoMeasurement(None, "the serving registry's versions could not be read back")
    measured = feature_store_rpo(canary, surviving, audited_at)
    reason = measured.reason.replace("canary write", "registry change (version + alias move)")
    if measured.seconds is None:
        return RpoMeasurement(None, reason, measured.detail)
    lost = whole(measured.detail.get("lost", 0))
    # The counts are part of every measured result, zero included: a reader comparing
    # with the restored copy should not have to infer "none lost" from a missing key.
    detail = {**measured.detail, "versions_lost": lost, "alias_changes_lost": lost}
    if lost == 0:
        return RpoMeasurement(measured.seconds, reason, detail)
    return RpoMeasurement(
        measured.seconds,
        f"{lost} acknowledged registry changes lost (each a version and an alias move), "
        f"spanning {format_seconds(measured.seconds)}",
        detail,
    )


@dataclass(frozen=True)
class StoredVersion:
    """One version of the model object in a region's store, as the run listed it."""

    version_id: str
    created_at: float | None = None
    source_version: str | None = None  # the primary's version a replica was copied from


@dataclass(frozen=True)
class StoreListing:
    """A region's versions, or why they could not be listed."""

    versions: tuple[StoredVersion, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ArtifactVersions:
    """``artifact-versions.json``: each region's versions before and after the run
    (empty: not listed)."""

    before: Mapping[str, StoreListing] = field(default_factory=dict)
    after: Mapping[str, StoreListing] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Line) -> ArtifactVersions:
        return cls(_listings(record.get("before")), _listings(record.get("after")))


def _listings(value: object) -> dict[str, StoreListing]:
    regions = value.get("regions") if isinstance(value, Mapping) else None
    if not isinstance(regions, Mapping):
        return {}
    found = {}
    for region, listed in regions.items():
        if not isinstance(listed, Mapping):
            continue
        versions = listed.get("versions")
        found[str(region)] = StoreListing(
            tuple(
                StoredVersion(
                    str(v.get("version_id")),
                    maybe_number(v.get("created_at")),
                    text(v.get("source_version")),
                )
                for v in (versions if isinstance(versions, list) else [])
                if isinstance(v, Mapping) and v.get("version_id") is not None
            ),
            text(listed.get("error")),
        )
    return found


def artifact_rpo(
    versions: ArtifactVersions, primary: str, dr: str, t_fault: float | None
) -> RpoMeasurement:
    """Versions lost over the run, and how far the DR region's copy lags behind."""
    before, after = versions.before, versions.after
    if not before or not after:
        return RpoMeasurement(None, "the artifact versions were not listed before and after")
    for when, listed in (("before", before), ("after", after)):
        for region in (primary, dr):
            error = (listed.get(region) or StoreListing()).error
            if error is not None:
                # A store that could not be listed says nothing of what it holds: no
                # version is counted lost (nor kept) on its account.
                return RpoMeasurement(
                    None, f"the {region} artifact store could not be listed {when} the run: {error}"
                )
    empty = StoreListing()
    lost: list[str] = []
    for region in (primary, dr):
        had = {v.version_id for v in before.get(region, empty).versions}
        has = {v.version_id for v in after.get(region, empty).versions}
        lost += sorted(had - has)
    published = [v for v in after.get(primary, empty).versions if v.created_at]
    in_dr = after.get(dr, empty).versions
    dr_sources = {v.source_version for v in in_dr}
    newest = max(published, key=lambda v: v.created_at or 0.0) if published else None
    age = None
    dated = [v.created_at for v in in_dr if v.created_at]
    if newest is not None and newest.version_id not in dr_sources and dated:
        present = max(dated)
        age = max(0.0, (t_fault or newest.created_at or present) - present)
    detail: dict[str, JsonOut] = {"versions_lost": len(lost), "lost": lost, "dr_lag_seconds": age}
    seconds = age or 0.0
    if lost:
        reason = f"{len(lost)} artifact versions lost"
    elif age:
        reason = f"0 versions lost; the DR region's newest version is {format_seconds(age)} old"
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
    goal = format_seconds(target)
    if measurement.seconds == float("inf"):
        return Verdict("missed", f"RPO missed: {measurement.reason}")
    achieved = format_seconds(measurement.seconds)
    if measurement.at_least and measurement.seconds <= target:
        return Verdict(
            "inconclusive",
            f"RPO at least {achieved}: the run did not observe far enough back to show it "
            f"within the {goal} target ({measurement.reason})",
        )
    if measurement.at_least:
        return Verdict(
            "missed", f"RPO at least {achieved}, over the {goal} target ({measurement.reason})"
        )
    if measurement.seconds <= target:
        return Verdict("met", f"RPO {achieved} within the {goal} target ({measurement.reason})")
    return Verdict("missed", f"RPO {achieved} over the {goal} target ({measurement.reason})")
