"""Where the recovery time went: phases bounded by the target's own activities, adding
up to the RTO, unknown where no evidence marks a boundary (issue 28)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aidrill.measure import ACTIVITY_EVENT, Event, recovery_phases
from aidrill.measure._phases import over_reference


def _activity(at: float, step: str | None, status: str = "succeeded", action: str = "x") -> Event:
    data: dict[str, Any] = {"source": "lab load balancer of east", "action": action,
                            "status": status}  # fmt: skip
    if step:
        data["step"] = step
    return Event(at, ACTIVITY_EVENT, data)


def test_every_step_marked_splits_the_rto_into_four_phases() -> None:
    marks = [_activity(100.4, "detect", action="take node-2 out of rotation"),
             _activity(101.0, "detect", action="launch node-5"),
             _activity(102.5, "provision", action="start node-5"),
             _activity(104.0, "load", action="admit node-5 to rotation")]  # fmt: skip
    phases = recovery_phases(100.0, 106.0, marks)
    assert [(p.name, round(p.seconds, 3)) for p in phases] == [
        ("detect", 0.4), ("provision", 2.1), ("load", 1.5), ("warm", 2.0)]  # fmt: skip
    assert phases[0].evidence == "lab load balancer of east: take node-2 out of rotation"
    assert sum(p.seconds for p in phases) == pytest.approx(6.0)


def test_a_boundary_nothing_marked_is_left_unsplit() -> None:
    marks = [_activity(100.5, "detect"), _activity(104.0, "load"),
             _activity(101.0, "provision", status="failed")]  # fmt: skip
    phases = recovery_phases(100.0, 106.0, marks)
    assert [p.name for p in phases] == ["detect", "provision+load", "warm"]
    assert [round(p.seconds, 3) for p in phases] == [0.5, 3.5, 2.0]


def test_steps_reached_after_users_recovered_are_off_the_path() -> None:
    marks = [_activity(100.5, "detect"), _activity(103.0, "provision"), _activity(105.0, "load")]
    phases = recovery_phases(100.0, 101.5, marks, resolution=1.0)
    assert [p.name for p in phases] == ["detect", "warm"]
    assert "before provision and load: the capacity left carried the load" in phases[1].evidence


def test_a_step_inside_the_recovery_bucket_ends_at_the_recovery_instant() -> None:
    """The recovery instant is its bucket's start: a node admitted 0.4 s into that
    bucket is on the path, its boundary the recovery instant (warm: 0 s)."""
    marks = [_activity(100.2, "detect"), _activity(102.1, "provision"), _activity(103.4, "load")]
    phases = recovery_phases(100.0, 103.0, marks, resolution=1.0)
    assert [(p.name, round(p.seconds, 3)) for p in phases] == [
        ("detect", 0.2), ("provision", 1.9), ("load", 0.9), ("warm", 0.0)]  # fmt: skip


def test_no_evidence_at_all_is_one_unsplit_phase() -> None:
    (phase,) = recovery_phases(100.0, 108.0, [_activity(101.0, None)])
    assert (phase.name, phase.seconds) == ("detect+provision+load+warm", 8.0)


def test_the_phase_that_ate_the_margin_is_named() -> None:
    phases = recovery_phases(100.0, 110.0, [_activity(101, "detect"), _activity(108, "provision")])
    records = [p.to_record(100.0, {"detect": 2.0, "provision": 3.0, "load": 1.0}) for p in phases]
    assert [r.get("reference_seconds") for r in records] == [2.0, 3.0, None]
    assert over_reference(records) == "provision took 4.0 s more than the plan's reference"
    assert over_reference([{**records[0]}]) is None


_TIMES = st.floats(min_value=-5.0, max_value=40.0, allow_nan=False)


@given(
    marks=st.lists(
        st.tuples(_TIMES, st.sampled_from(["detect", "provision", "load", None]),
                  st.sampled_from(["succeeded", "started", "failed"])),
        max_size=12,
    ),
    rto=st.floats(min_value=0.5, max_value=30.0),
)  # fmt: skip
def test_phases_always_partition_the_rto_in_order(marks: list[Any], rto: float) -> None:
    activities = [_activity(100.0 + t, step, status) for t, step, status in marks]
    phases = recovery_phases(100.0, 100.0 + rto, activities, resolution=1.0)
    assert phases[0].start == 100.0 and phases[-1].end == 100.0 + rto
    assert all(a.end == b.start for a, b in itertools.pairwise(phases))
    assert all(p.seconds >= 0 for p in phases)
    assert sum(p.seconds for p in phases) == pytest.approx(rto)
    named = [part for p in phases for part in p.name.split("+")]
    order = ["detect", "provision", "load", "warm"]
    assert named == sorted(named, key=order.index) and named[-1] == "warm"
    # Each boundary is an activity that succeeded or started (the recovery instant, for
    # one inside the recovery's bucket), never a failed one.
    end = 100.0 + rto
    for phase in phases[:-1]:
        assert any(
            a.data.get("status") != "failed"
            and (abs(a.time - phase.end) < 1e-9 or (phase.end == end and 0 < a.time - end <= 1))
            for a in activities
        )
