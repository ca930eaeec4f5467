"""The measurement definitions of DESIGN.md, as unit and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aidrill.measure import Bucket, HealthRule, judge_rto, measure_recovery

RULE = HealthRule(min_success_ratio=0.95, max_p95=0.5, min_quality=0.8)
T0 = 1_800_000_000.0


def healthy(start: float, width: float = 1.0) -> Bucket:
    return Bucket(start, width, requests=30, failures=0, p95=0.2, correct=29, scored=30)


def broken(start: float, width: float = 1.0) -> Bucket:
    return Bucket(start, width, requests=30, failures=30, p95=0.01, correct=0, scored=0)


def series(pattern: str, start: float = T0) -> list[Bucket]:
    """'h' healthy, 'x' unhealthy, '.' a missing bucket, one second each."""
    buckets = []
    for offset, mark in enumerate(pattern):
        if mark == "h":
            buckets.append(healthy(start + offset))
        elif mark == "x":
            buckets.append(broken(start + offset))
    return buckets


def test_recovery_is_the_start_of_the_first_sustained_healthy_run() -> None:
    buckets = series("hhhhh" + "xxx" + "hh" + "x" + "h" * 12)
    m = measure_recovery(buckets, T0 + 5.2, T0 + 30, RULE, sustain=10)
    assert m.t_first_unhealthy == T0 + 5.2
    assert m.t_first_success == T0 + 8
    assert m.t_recovered == T0 + 11
    assert m.rto == pytest.approx(11 - 5.2)
    assert m.detection_delay == pytest.approx(0.8), "seen once the bucket [5, 6) closed"


def test_no_unhealthy_bucket_means_rto_zero_and_no_impact() -> None:
    m = measure_recovery(series("h" * 20), T0 + 3, T0 + 20, RULE, sustain=5)
    assert not m.impact
    assert m.rto == 0
    assert judge_rto(20, m).status == "met"


def test_detection_delay_counts_from_injection_to_the_end_of_the_first_unhealthy_bucket() -> None:
    m = measure_recovery(series("hhhhhhhxx" + "h" * 12), T0 + 4.5, T0 + 30, RULE, sustain=10)
    assert m.detection_delay == pytest.approx(3.5)
    assert m.t_first_unhealthy == T0 + 7


def test_never_recovering_inside_the_window_is_not_recovered() -> None:
    m = measure_recovery(series("hhh" + "x" * 10 + "h" * 5), T0 + 3, T0 + 18, RULE, sustain=10)
    assert m.rto is None
    assert not m.recovered


def test_a_gap_in_the_series_breaks_a_healthy_run() -> None:
    m = measure_recovery(
        series("hhxx" + "hhhhh" + "." + "h" * 10), T0 + 2, T0 + 40, RULE, sustain=6
    )
    assert m.t_recovered == T0 + 10


def test_an_empty_bucket_proves_nothing_and_is_unknown() -> None:
    # Three empty buckets after the fault: neither healthy nor unhealthy, but a stretch
    # with no evidence longer than a bucket plus the grace, so nothing can be claimed.
    empty = [Bucket(T0 + i, 1.0, 0, 0) for i in range(3)]
    m = measure_recovery(empty + series("h" * 10, T0 + 3), T0, T0 + 13, RULE, sustain=5)
    assert not m.impact and m.uncovered is not None
    assert (m.uncovered.start, m.uncovered.end) == (T0, T0 + 3)
    assert judge_rto(20, m).status == "not measured"


def test_slow_or_wrong_answers_are_unhealthy_too() -> None:
    slow = Bucket(T0, 1.0, 30, 0, p95=0.9, correct=30, scored=30)
    wrong = Bucket(T0 + 1, 1.0, 30, 0, p95=0.1, correct=10, scored=30)
    m = measure_recovery([slow, wrong, *series("h" * 5, T0 + 2)], T0, T0 + 10, RULE, sustain=3)
    assert m.t_first_unhealthy == T0
    assert m.t_recovered == T0 + 2


def test_verdicts() -> None:
    recovered = measure_recovery(series("xx" + "h" * 10), T0, T0 + 20, RULE, sustain=5)
    assert judge_rto(5, recovered).status == "met"
    assert judge_rto(1, recovered).status == "missed"
    lost = measure_recovery(series("x" * 20), T0, T0 + 20, RULE, sustain=5)
    assert judge_rto(15, lost).status == "missed"
    inconclusive = judge_rto(60, lost, cause="no GPU capacity in region b")
    assert inconclusive.status == "inconclusive"
    assert "no GPU capacity in region b" in inconclusive.reason
    assert judge_rto(5, None).status == "not measured"


@pytest.mark.parametrize(
    ("window", "target", "sustain", "status"),
    [
        (30, 20, 10, "missed"),  # window = target + sustain: a recovery by 20 s shows
        (29.9, 20, 10, "missed"),  # short of it, but unhealthy past 20 s: proven
        (25, 20, 10, "missed"),  # the no-capacity drill's old window, all of it down
        (20, 20, 10, "inconclusive"),  # down to the target's instant: 20 s itself unseen
        (19, 20, 10, "inconclusive"),  # a window short of the target proves no miss
        (25, 25, 0, "missed"),  # no sustain: the window itself is the range
        (60, 20, 10, "missed"),
    ],
)
def test_missed_needs_the_window_or_its_unhealthy_buckets_to_rule_out_the_target(
    window: float, target: float, sustain: float, status: str
) -> None:
    lost = measure_recovery(series("x" * 70), T0, T0 + window, RULE, sustain=sustain)
    assert lost.provable_until == pytest.approx(max(0.0, window - sustain))
    if sustain:  # every bucket wholly inside the window is down
        assert lost.ruled_out == pytest.approx(int(window))
    verdict = judge_rto(target, lost)
    assert verdict.status == status, verdict.reason
    if status == "inconclusive":
        assert "short of the" in verdict.reason and "can confirm a recovery only up to" in (
            verdict.reason
        )


@pytest.mark.parametrize(
    ("pattern", "ruled_out", "status"),
    [
        # Down for 15 s, then healthy to the window's end at 22 s: a recovery at 15 s
        # would be confirmed at 25 s, after the window. Not shown, not disproven.
        ("x" * 15 + "h" * 55, 15, "inconclusive"),
        # Bad again at 13 s: no recovery began before 14 s; one at 14..20 s may have.
        ("x" * 5 + "h" * 8 + "x" + "h" * 56, 14, "inconclusive"),
        # Bad again at 21 s: no recovery began before 22 s, past the 20 s target.
        ("x" * 5 + "h" * 8 + "x" + "h" * 7 + "x" + "h" * 48, 22, "missed"),
        # The same bad second 10 s after the last: a recovery at 14 s held 14..24 s.
        ("x" * 5 + "h" * 8 + "x" + "h" * 10 + "x" + "h" * 45, 14, "recovered"),
    ],
)
def test_a_miss_is_proven_by_unhealthy_buckets_inside_every_candidates_sustain(
    pattern: str, ruled_out: float, status: str
) -> None:
    m = measure_recovery(series(pattern), T0, T0 + 22 if status != "recovered" else T0 + 30,
                         RULE, sustain=10)  # fmt: skip
    if status == "recovered":
        assert m.rto == 14 and m.ruled_out is None
        return
    assert m.ruled_out == pytest.approx(ruled_out)
    verdict = judge_rto(20, m)
    assert verdict.status == status, verdict.reason
    if status == "missed":
        assert "unhealthy answers up to 22.0 s after the fault rule out a recovery starting" in (
            verdict.reason
        )


@given(
    st.text(alphabet="hx.", min_size=1, max_size=40),
    st.text(alphabet="hx.", min_size=0, max_size=40),
    st.floats(0, 10),
    st.floats(1, 15),
    st.floats(0, 0.99),
)
def test_a_recovery_the_evidence_ruled_out_never_appears_however_long_one_watches(
    seen: str, after: str, fault_offset: float, sustain: float, cut: float
) -> None:
    """Brute force: what a window ruled out stays ruled out in a longer window over the
    same series (which goes on past the first window's end, as the load does)."""
    buckets = series(seen + after + "h" * 20)
    fault = T0 + min(fault_offset, len(seen) - 0.5)
    window = measure_recovery(buckets, fault, T0 + len(seen) - cut, RULE, sustain)
    if window.ruled_out_until is None:
        return
    longer = measure_recovery(buckets, fault, T0 + 200, RULE, sustain)
    assert longer.t_recovered is not None and longer.t_recovered >= window.ruled_out_until - 1e-9


def test_a_recovery_needs_its_sustain_inside_the_window_to_count() -> None:
    # Recovers 18 s after the fault; with 10 s of sustain it is confirmed only at 28 s.
    buckets = series("x" * 18 + "h" * 40)
    short = measure_recovery(buckets, T0, T0 + 25, RULE, sustain=10)
    assert not short.recovered and judge_rto(20, short).status == "inconclusive"
    long = measure_recovery(buckets, T0, T0 + 30, RULE, sustain=10)
    assert long.rto == 18 and judge_rto(20, long).status == "met"


patterns = st.text(alphabet="hx.", min_size=1, max_size=60)


@given(patterns, st.floats(0, 30), st.floats(1, 20), st.floats(-1e9, 1e9))
def test_rto_is_never_negative_and_shift_invariant(
    pattern: str, fault_offset: float, sustain: float, shift: float
) -> None:
    window = T0 + len(pattern)
    m = measure_recovery(series(pattern), T0 + fault_offset, window, RULE, sustain)
    shifted = measure_recovery(
        series(pattern, T0 + shift), T0 + shift + fault_offset, window + shift, RULE, sustain
    )
    if m.rto is not None:
        assert m.rto >= 0
        assert shifted.rto is not None
        assert abs(shifted.rto - m.rto) < 1e-6
    else:
        assert shifted.rto is None


@given(patterns, st.floats(1, 20))
def test_recovery_after_impact_requires_a_sustained_healthy_run(
    pattern: str, sustain: float
) -> None:
    buckets = series(pattern)
    m = measure_recovery(buckets, T0, T0 + len(pattern), RULE, sustain)
    if m.impact and m.t_recovered is not None:
        run = [b for b in buckets if m.t_recovered <= b.start < m.t_recovered + sustain]
        assert run and all(b.p95 == 0.2 for b in run)
        assert run[-1].end - m.t_recovered >= sustain - 1e-9


def test_a_relapse_after_the_sustained_recovery_is_kept_apart_from_the_rto() -> None:
    # Recovered at +6 for 10 s, then down again twice: 3 s at +20, and 2 s at +25 with a
    # missing second between its buckets (two relapses, not one).
    pattern = "hhhhh" + "xxxxxx" + "h" * 10 + "xxx" + "hh" + "x.x" + "hhhh"
    m = measure_recovery(series(pattern), T0 + 5, T0 + len(pattern), RULE, sustain=10)
    assert m.rto == pytest.approx(6)
    assert [(r.start - T0, r.seconds) for r in m.relapses] == [(21, 3), (26, 1), (28, 1)]
    clean = measure_recovery(series("hhhhh" + "xx" + "h" * 15), T0 + 5, T0 + 22, RULE, 10)
    assert clean.relapses == ()
    never = measure_recovery(series("hhhhh" + "x" * 15), T0 + 5, T0 + 20, RULE, sustain=10)
    assert never.relapses == ()


@given(patterns, st.floats(1, 20))
def test_relapses_are_every_unhealthy_bucket_after_the_recovery(
    pattern: str, sustain: float
) -> None:
    m = measure_recovery(series(pattern), T0, T0 + len(pattern), RULE, sustain)
    if m.t_recovered is None or not m.impact:
        assert m.relapses == ()
        return
    after = int(m.t_recovered - T0)
    expected = [i for i, mark in enumerate(pattern) if mark == "x" and i >= after]
    covered = [i for r in m.relapses for i in range(int(r.start - T0), int(r.end - T0))]
    assert covered == expected
    # Each relapse is a maximal run: the seconds either side are not unhealthy.
    for r in m.relapses:
        before, past = int(r.start - T0) - 1, int(r.end - T0)
        assert before < 0 or pattern[before] != "x"
        assert past >= len(pattern) or pattern[past] != "x"


@given(
    st.floats(0, 2e9),
    st.integers(0, 100),
    st.integers(0, 100),
    st.one_of(st.none(), st.floats(0, 10)),
    st.one_of(st.none(), st.integers(0, 100_000).map(lambda ms: ms / 1000)),  # as written
    st.dictionaries(st.text(max_size=5), st.integers(0, 9), max_size=2),
)
def test_a_bucket_read_from_its_record_equals_the_one_written(
    start: float, requests: int, failures: int, p95: float | None, age: float | None,
    regions: dict[str, int],
) -> None:  # fmt: skip
    import dataclasses

    written = Bucket(start, 1.0, requests, failures, p95=p95, correct=3.0, scored=4,
                     regions=regions, max_age=age)  # fmt: skip
    read = Bucket.from_record(written.to_record() | {"start": start})
    assert read == written and vars(read) == vars(written)
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.start = 0.0  # type: ignore[misc]


def test_a_miss_names_its_cause_only_from_what_the_target_showed_through_its_api() -> None:
    from aidrill.measure import ACTIVITY_EVENT, GROUND_TRUTH_PREFIX, Event
    from aidrill.measure._run import _cause

    truth = Event(T0 + 3, f"{GROUND_TRUTH_PREFIX}provisioning_refused", {"reason": "no GPUs"})
    assert _cause([truth], T0, T0 + 60) is None, "the lab's own log is not evidence"
    said = {"source": "asg gpu", "action": "launch"}
    launched = Event(T0 + 4, ACTIVITY_EVENT, {**said, "status": "succeeded", "cause": ""})
    failed = Event(T0 + 5, ACTIVITY_EVENT, {**said, "status": "failed", "cause": "no capacity"})
    before = Event(T0 - 5, ACTIVITY_EVENT, {**failed.data, "cause": "earlier"})
    assert _cause([before, truth, launched, failed], T0, T0 + 60) == (
        "no capacity (asg gpu: launch failed)"
    )
    unread = Event(T0 + 5, ACTIVITY_EVENT, {**said, "status": "unreadable", "cause": "timeout"})
    assert _cause([unread], T0, T0 + 60) is None, "a history that could not be read says nothing"
    silent = Event(T0 + 6, ACTIVITY_EVENT, {**failed.data, "cause": ""})
    assert _cause([silent], T0, T0 + 60) == "asg gpu: launch failed"


def test_an_evidence_field_of_another_type_is_not_read_as_a_number() -> None:
    from aidrill.measure._line import maybe_number, number, whole

    assert number(2.5) == 2.5 and number(3) == 3.0 and number("4.5") == 4.5
    assert whole(7) == 7 and whole("8") == 8 and whole(9.0) == 9
    assert maybe_number(None) is None and maybe_number(1) == 1.0
    for wrong in (True, None, [1], {"a": 1}):
        with pytest.raises(TypeError):
            number(wrong)
    for wrong in (False, 2.5, [1]):
        with pytest.raises(TypeError):
            whole(wrong)
    with pytest.raises(ValueError):
        number("fast")
