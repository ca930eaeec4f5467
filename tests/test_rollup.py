"""The quarter's worst case per component, over generated multi-fault timelines, equals a
brute-force recomputation from the buckets: an episode cut short by the next fault is
superseded (never "not recovered"), a run that never recovered is the worst case and is
counted, and the trend shows the same figure as the headline."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aidrill.measure import Bucket, ComponentRecord
from aidrill.measure._records import Event
from aidrill.measure._run import Coverage, TierEvidence, _evaluate_component
from aidrill.plan import load_plan
from aidrill.report._quarterly import worst_rto

from .conftest import PLAN

T0 = 1_800_000_000.0
SUSTAIN = 3.0
_PLAN = load_plan(PLAN)
_INFERENCE = next(c for c in _PLAN.components if c.tier == "inference")


def _bucket(second: int, healthy: bool) -> Bucket:
    return Bucket(start=T0 + second, width=1.0, requests=20, failures=0 if healthy else 20,
                  p50=0.02, p95=0.05, p99=0.06, max=0.07, correct=20 if healthy else 0,
                  scored=20 if healthy else 0)  # fmt: skip


@st.composite
def timelines(draw: Any) -> tuple[list[bool], list[float]]:
    """Healthy/unhealthy seconds in segments, and one to three faults, some mid-bucket."""
    length = draw(st.integers(20, 50))
    states: list[bool] = []
    while len(states) < length:
        states += [draw(st.booleans())] * draw(st.integers(1, 8))
    states = [True, True, *states[: length - 2]]
    seconds = draw(st.lists(st.integers(2, length - 4), min_size=1, max_size=3, unique=True))
    offsets = [draw(st.sampled_from([0.0, 0.3, 0.9])) for _ in seconds]
    return states, sorted(T0 + s + o for s, o in zip(seconds, offsets, strict=True))


def _measure(states: list[bool], faults: list[float]) -> ComponentRecord:
    buckets = [_bucket(i, healthy) for i, healthy in enumerate(states)]
    events = [Event(t, "fault_injected", {"activity": f"fault-{i}"}) for i, t in enumerate(faults)]
    window_end = T0 + len(states)
    result = _evaluate_component(
        _PLAN, _INFERENCE, events, buckets, faults[0], window_end, SUSTAIN, TierEvidence(),
        Coverage(),
    )  # fmt: skip
    return ComponentRecord.model_validate(result.to_record().to_json())  # as result.json reads back


def _brute_recovery(states: list[bool], start: float, end: float) -> float | None:
    """RTO from ``start`` judged until ``end``: 0 without an unhealthy bucket; else the
    start of the first SUSTAIN healthy seconds after the first unhealthy one, ending
    by ``end``; None when there is none."""
    seen = [i for i in range(len(states)) if T0 + i + 1 > start and T0 + i < end]
    bad = next((i for i in seen if not states[i]), None)
    if bad is None:
        return 0.0
    for i in (j for j in seen if j >= bad):
        last = i + int(SUSTAIN) - 1
        if last < len(states) and T0 + last + 1 <= end + 1e-9 and all(states[i : last + 1]):
            return max(0.0, T0 + i - start)
    return None


def _brute_items(states: list[bool], faults: list[float]) -> list[tuple[float | None, float]]:
    """(RTO or None, window) of the run's headline and of each episode that can be
    judged: the last, or one that recovered before the next fault."""
    end = T0 + len(states)
    bad = next((T0 + i for i in range(len(states)) if T0 + i + 1 > faults[0] and not states[i]),
               None)  # fmt: skip
    causing = faults[0]
    if bad is not None:
        causing = max([t for t in faults if t < bad + 1.0] or [faults[0]])
    items = [(_brute_recovery(states, causing, end), end - causing)]
    if len(faults) > 1:
        for i, start in enumerate(faults):
            stop = faults[i + 1] if i + 1 < len(faults) else end
            rto = _brute_recovery(states, start, stop)
            if rto is not None or i + 1 == len(faults):
                items.append((rto, stop - start))
    return items


@settings(max_examples=150, deadline=None)
@given(st.lists(timelines(), min_size=1, max_size=4))
def test_the_worst_case_equals_a_brute_force_recomputation(
    runs: list[tuple[list[bool], list[float]]],
) -> None:
    records = [_measure(states, faults) for states, faults in runs]
    rolled = worst_rto(records)
    every = [(i, item) for i, (s, f) in enumerate(runs) for item in _brute_items(s, f)]
    windows = [window for _, (rto, window) in every if rto is None]
    recovered = [rto for _, (rto, _) in every if rto is not None]
    assert rolled.not_recovered == len({i for i, (rto, _) in every if rto is None})
    if windows:
        assert rolled.worst_rto is None
        assert abs(rolled.worst_window - max(windows)) < 0.01, (rolled, windows)
        assert "not recovered" in rolled.worst_rto_text
    else:
        assert abs(rolled.worst_rto - max(recovered)) < 0.01, (rolled, recovered)
    for record in records:
        for episode in record.achieved.episodes or []:
            assert (episode.recovered is None) == bool(episode.superseded_by)


def test_a_first_fault_cut_short_by_the_second_is_superseded_not_unrecovered() -> None:
    # Healthy, the first fault at +5 s hurts, the second lands at +8 s before any
    # recovery, and the system is healthy again from +14 s.
    states = [True] * 5 + [False] * 9 + [True] * 16
    record = _measure(states, [T0 + 5, T0 + 8])
    first, second = record.achieved.episodes or []
    assert first.recovered is None and first.superseded_by == "fault-1"
    assert second.recovered and second.rto_seconds == 6.0
    rolled = worst_rto([record])
    assert rolled.not_recovered == 0 and rolled.worst_rto == 9.0, rolled
