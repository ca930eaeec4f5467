"""RPO from evidence and probe series as buckets: the pure functions of measure/_rpo."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aidrill.lab.serving.worker import resolve_entity_features
from aidrill.measure import (
    ArtifactVersions,
    CanaryWrite,
    HealthRule,
    Sample,
    artifact_rpo,
    feature_store_rpo,
    judge_rpo,
    measure_recovery,
    pipeline_rpo,
    probe_buckets,
    registry_rpo,
    vector_canary_rpo,
)


def _canary(start: float, count: int, failed: range = range(0)) -> list[CanaryWrite]:
    return [CanaryWrite(i + 1, start + i * 0.1, i not in failed) for i in range(count)]


def test_feature_rpo_is_the_span_of_acknowledged_writes_lost() -> None:
    # Writes at 1000.0 .. 1019.9; replication paused after seq 50 (t=1004.9); the primary
    # died after seq 130 (t=1012.9); seqs 131-139 failed while the replica was promoted.
    canary = _canary(1000.0, 200, failed=range(130, 139))
    surviving = list(range(1, 51)) + list(range(140, 201))
    rpo = feature_store_rpo(canary, surviving, audited_at=1030.0)
    assert rpo.seconds is not None
    assert math.isclose(rpo.seconds, 8.0, abs_tol=1e-9)
    assert rpo.detail["lost"] == 80
    assert rpo.detail["newest_surviving_seq"] == 50


def test_no_lost_write_means_rpo_zero_and_unacknowledged_writes_do_not_count() -> None:
    canary = _canary(1000.0, 50, failed=range(20, 25))
    surviving = [s for s in range(1, 51) if not 21 <= s <= 25]
    rpo = feature_store_rpo(canary, surviving, audited_at=1010.0)
    assert rpo.seconds == 0.0


def test_writes_after_the_audit_are_not_counted_lost() -> None:
    canary = _canary(1000.0, 100)
    rpo = feature_store_rpo(canary, list(range(1, 61)), audited_at=1006.0)
    assert rpo.seconds == 0.0


def test_unreadable_survivors_leave_the_rpo_unmeasured() -> None:
    rpo = feature_store_rpo(_canary(0.0, 10), None, audited_at=5.0)
    assert rpo.seconds is None
    verdict = judge_rpo(5.0, rpo)
    assert verdict is not None and verdict.status == "not measured"


@given(
    pause=st.floats(min_value=0.5, max_value=30.0),
    shift=st.floats(min_value=-1e6, max_value=1e6),
)
def test_feature_rpo_tracks_the_pause_and_ignores_the_clock_origin(
    pause: float, shift: float
) -> None:
    interval = 0.1
    writes = int((pause + 5) / interval) + 20
    paused_after = 10
    lost_until = paused_after + round(pause / interval)
    canary = _canary(1_700_000_000.0 + shift, writes, failed=range(lost_until, lost_until + 4))
    surviving = list(range(1, paused_after + 1)) + list(range(lost_until + 5, writes + 1))
    rpo = feature_store_rpo(canary, surviving, audited_at=math.inf)
    assert rpo.seconds is not None
    assert abs(rpo.seconds - (lost_until - paused_after) * interval) < 1e-3


def _vector_canaries(t_fault: float) -> list[CanaryWrite]:
    """A canary vector every 0.2 s from t_fault - 10 s; the ones after the fault fail."""
    return [
        CanaryWrite(i + 1, t_fault - 10 + i * 0.2, t_fault - 10 + i * 0.2 <= t_fault)
        for i in range(80)
    ]


def _index_samples(t_fault: float, held_upto: int, after: int = 0) -> list[Sample]:
    """The index answers before the fault, not after it, then holds canaries up to
    ``held_upto`` (and ``after`` newer ones written since it came back)."""
    ranges = [[1, held_upto]] + ([[60, 60 + after]] if after else [])
    before = [
        Sample(
            t_fault - 1 + i * 0.25,
            "vector-index",
            True,
            1.0,
            {"region": "east", "canaries_present": [[1, 45]]},
        )
        for i in range(4)
    ]
    gone = [
        Sample(
            t_fault + 0.1 + i * 0.25,
            "vector-index",
            False,
            0.0,
            {"region": "east", "canaries_present": None},
        )
        for i in range(4)
    ]
    back = [
        Sample(
            t_fault + 1.2 + i * 0.25,
            "vector-index",
            True,
            1.0,
            {"region": "east", "canaries_present": ranges},
        )
        for i in range(8)
    ]
    return before + gone + back  # fmt: skip


def test_vector_rpo_is_the_age_of_the_newest_canary_served_after_the_fault() -> None:
    t_fault = 1000.0
    # Canary 38 was acknowledged at t_fault - 10 + 37 * 0.2 = t_fault - 2.6.
    rpo = vector_canary_rpo(_vector_canaries(t_fault), _index_samples(t_fault, 38), t_fault)
    assert rpo.seconds is not None and abs(rpo.seconds - 2.6) < 1e-6
    assert rpo.detail["lost"] == 51 - 38, "canaries 39..51 were acknowledged before the fault"
    verdict = judge_rpo(30.0, rpo)
    assert verdict is not None and verdict.status == "met"
    assert judge_rpo(2.0, rpo).status == "missed"  # type: ignore[union-attr]
    # Canaries written after the index came back never stand in for lost ones.
    later = vector_canary_rpo(
        _vector_canaries(t_fault), _index_samples(t_fault, 38, after=10), t_fault
    )
    assert later.seconds == rpo.seconds


def test_an_index_that_lost_every_canary_gives_a_lower_bound() -> None:
    t_fault = 1000.0
    samples = _index_samples(t_fault, 1)
    for sample in samples[-8:]:
        sample.data["canaries_present"] = []
    rpo = vector_canary_rpo(_vector_canaries(t_fault), samples, t_fault)
    assert rpo.at_least and rpo.seconds == 10.0
    assert "at least" in rpo.reason
    verdict = judge_rpo(30.0, rpo)
    assert verdict is not None and verdict.status == "inconclusive", "10 s seen, 30 s allowed"
    assert judge_rpo(5.0, rpo).status == "missed"  # type: ignore[union-attr]


def _job(
    time: float,
    step: int,
    resumes: int,
    ok: bool = True,
    resumed_from: int | None = None,
    region: str = "east",
) -> Sample:
    return Sample(time, "training", ok, 1.0 if ok else 0.0,
                  {"step": step, "resumes": resumes, "resumed_from_step": resumed_from,
                   "region": region})  # fmt: skip


def test_a_job_that_kept_running_lost_nothing() -> None:
    samples = [_job(990 + i * 0.25, i, 0) for i in range(80)]
    rpo = pipeline_rpo(samples, "training", 1000.0)
    assert rpo.seconds == 0.0


def test_pipeline_rpo_is_when_the_resumed_from_step_was_first_observed() -> None:
    # Steps every 0.25 s, observed every 0.1 s; step 30 first seen at 997.0 (990 + 30 *
    # 0.25 = 997.5 is when it was reached; the observer saw it at 997.52).
    samples = []
    for i in range(100):
        now = 990 + i * 0.1
        samples.append(_job(now, int((now - 990) / 0.25), 0))
    samples += [_job(1000.05 + i * 0.1, 40, 0, ok=False) for i in range(10)]
    samples += [_job(1001.2 + i * 0.1, 30 + i // 3, 1, resumed_from=30, region="west")
                for i in range(20)]  # fmt: skip
    rpo = pipeline_rpo(samples, "training", 1000.0)
    first_seen = min(s.time for s in samples if s.data["step"] >= 30)
    assert rpo.seconds == 1000.0 - first_seen
    assert rpo.detail["resumed_from_step"] == 30 and rpo.detail["region"] == "west"
    never = pipeline_rpo(samples[:110], "training", 1000.0)
    assert never.seconds is None and "did not resume" in never.reason
    # Observation that began after step 30 can only give a lower bound.
    late = pipeline_rpo(samples[90:], "training", 1000.0)
    assert late.at_least and late.seconds == 1000.0 - samples[90].time


def _versions(ids: list[str], source: str | None = None) -> dict[str, object]:
    """Versions created one second apart, in the order given."""
    return {
        "versions": [
            {"version_id": v, "created_at": 10.0 + i, "source_version": source}
            for i, v in enumerate(ids)
        ]
    }


def test_artifact_rpo_counts_versions_lost() -> None:
    before = {"regions": {"east": _versions(["v1", "v2"]), "west": _versions(["r1"], "v2")}}
    kept = {
        "regions": {
            "east": _versions(["v1", "v2", "v3"]),
            "west": _versions(["r1"], "v3"),
        }
    }
    lost = {"regions": {"east": _versions(["v2"]), "west": _versions(["r1"], "v2")}}

    def listed(after: dict[str, Any]) -> ArtifactVersions:  # as artifact-versions.json reads
        return ArtifactVersions.from_record({"before": before, "after": after})

    ok = artifact_rpo(listed(kept), "east", "west", 100.0)
    assert ok.seconds == 0.0 and ok.detail["versions_lost"] == 0
    bad = artifact_rpo(listed(lost), "east", "west", 100.0)
    assert bad.detail["versions_lost"] == 1
    assert judge_rpo(0.0, bad).status == "missed"  # type: ignore[union-attr]
    assert judge_rpo(None, bad) is None, "a stateless component has no RPO verdict"
    # A store that answered 500 when listed after the run: nothing is known lost.
    unlisted = {"regions": {"east": _versions(["v1", "v2"]), "west": {"error": "500"}}}
    unknown = artifact_rpo(listed(unlisted), "east", "west", 100.0)
    assert unknown.seconds is None and "could not be listed after the run" in unknown.reason
    assert judge_rpo(0.0, unknown).status != "missed"  # type: ignore[union-attr]


def test_probe_samples_become_buckets_that_measure_recovery() -> None:
    samples = [Sample(1000 + i * 0.25, "feature-store", not 8 <= i < 14, 1.0) for i in range(80)]
    buckets = probe_buckets(samples, "feature-store", 1.0)
    assert len(buckets) == 20 and all(b.series == "feature-store" for b in buckets)
    rule = HealthRule(0.95, math.inf, 0.8)
    measured = measure_recovery(buckets, 1001.9, 1020.0, rule, sustain=5.0)
    assert measured.t_first_unhealthy == 1002.0
    assert measured.t_recovered == 1004.0


def test_stale_or_missing_entity_features_fall_back_to_defaults() -> None:
    row = b'{"v": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], "ts": 100.0}'
    values, source = resolve_entity_features(row, now=110.0, max_age=30.0)
    assert source == "online" and values[0] == 1.0
    assert resolve_entity_features(row, now=200.0, max_age=30.0)[1] == "stale"
    assert resolve_entity_features(None, now=110.0, max_age=30.0)[1] == "missing"
    assert resolve_entity_features(b"{broken", now=110.0, max_age=30.0)[1] == "missing"
    assert resolve_entity_features(row, now=200.0, max_age=30.0)[0] == [0.0] * 12


def test_registry_rpo_counts_versions_and_alias_moves_lost() -> None:
    # Changes every 0.5 s from t=2000; the DR copy was taken after seq 20 (t=2009.5); the
    # primary registry was lost after seq 24 (t=2011.5); 25-30 failed; restored from DR.
    canary = [CanaryWrite(i, 2000 + (i - 1) * 0.5, not 25 <= i <= 30) for i in range(1, 41)]
    surviving = list(range(1, 21)) + list(range(31, 41))
    measured = registry_rpo(canary, surviving, audited_at=2100.0)
    assert math.isclose(measured.seconds or 0, 2.0)
    assert measured.detail["versions_lost"] == 4 and measured.detail["alias_changes_lost"] == 4
    assert "4 acknowledged registry changes lost" in measured.reason
    nothing_lost = registry_rpo(canary, list(range(1, 25)) + list(range(31, 41)), 2100.0)
    assert nothing_lost.seconds == 0.0 and "survived" in nothing_lost.reason
    assert nothing_lost.detail["versions_lost"] == 0
    unread = registry_rpo(canary, None, 2100.0)
    assert unread.seconds is None and "could not be read back" in unread.reason


def test_a_canary_log_is_read_into_writes_and_a_line_that_is_none_is_left_out() -> None:
    from aidrill.measure import parse_records

    lines = [
        {"seq": 1, "time": 10.0, "ok": True, "acked": 10.02},
        {"seq": 2, "time": 10.1, "ok": False},
        {"seq": "x", "time": 10.2, "ok": True},  # garbled
        {"time": 10.3, "ok": True},  # no sequence number
        {"seq": 4, "time": 10.4, "ok": "yes"},  # only true is acknowledged
    ]
    writes = parse_records(CanaryWrite.from_record, lines)
    assert writes == [CanaryWrite(1, 10.0, True, 10.02), CanaryWrite(2, 10.1, False),
                      CanaryWrite(4, 10.4, False)]  # fmt: skip
    assert [w.answered_at for w in writes] == [10.02, 10.1, 10.4]
    assert [CanaryWrite.from_record(w.to_record()) for w in writes] == writes
    # A write answered after the audit read the store back cannot count as lost.
    assert feature_store_rpo(writes[:1], [1], 10.01).reason == "no canary write was acknowledged"
    assert feature_store_rpo(writes[:1], [1], 10.03).seconds == 0.0
