"""Where the recovery time went: phases bounded by the target's own activities, adding
up to the RTO, unknown where no evidence marks a boundary (issue 28)."""

from __future__ import annotations

import itertools
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from aidrill.cli.main import cli
from aidrill.measure import ACTIVITY_EVENT, Bucket, Event, recovery_phases
from aidrill.measure._phases import new_node_marks, over_reference, recovery_step_marks
from aidrill.report import Quarter

from ._runs import synthetic_run
from .conftest import copy_shipped_files


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


def _served(start: float, **nodes: int) -> Bucket:
    return Bucket(start=start, width=1.0, requests=sum(nodes.values()) or 3, failures=0,
                  nodes=dict(nodes))  # fmt: skip


def test_a_replacements_first_answers_mark_the_load_step() -> None:
    """Where the server names the node that served (a header), the first answer from a
    node that served none before the fault ends the load phase: at the end of its
    bucket, the moment by which it was surely serving."""
    buckets = [_served(99.0, a=10, b=10), _served(100.0, a=9, b=2), _served(101.0, a=15),
               _served(102.0, a=15), _served(103.0, a=12, c=4),
               _served(104.0, a=10, c=10, d=1)]  # fmt: skip
    marks = new_node_marks(buckets, t_fault=100.3)
    assert [(m.time, m.data["step"]) for m in marks] == [(104.0, "load"), (105.0, "load")]
    assert "node c, which served none before the fault" in marks[0].data["action"]
    phases = recovery_phases(100.3, 104.0, [_activity(100.5, "detect"), *marks])
    assert [(p.name, round(p.seconds, 3)) for p in phases] == [
        ("detect", 0.2), ("provision+load", 3.5), ("warm", 0.0)]  # fmt: skip
    assert phases[1].evidence.startswith("the load's answers: first answer from node c")
    # The target's own record of the same step, earlier, is the boundary.
    admitted = _activity(103.2, "load", action="admit c to rotation")
    phases = recovery_phases(100.3, 104.0, [*marks, admitted])
    assert phases[0].name == "detect+provision+load" and phases[0].end == 103.2


def test_answers_that_name_no_node_mark_nothing() -> None:
    buckets = [_served(99.0), _served(100.0), _served(101.0, c=4)]
    assert new_node_marks(buckets, t_fault=100.3) == [], "no node was named before the fault"


def test_no_evidence_at_all_is_one_unsplit_phase() -> None:
    (phase,) = recovery_phases(100.0, 108.0, [_activity(101.0, None)])
    assert (phase.name, phase.seconds) == ("detect+provision+load+warm", 8.0)


def test_the_phase_that_ate_the_margin_is_named() -> None:
    phases = recovery_phases(100.0, 110.0, [_activity(101, "detect"), _activity(108, "provision")])
    records = [p.to_record(100.0, {"detect": 2.0, "provision": 3.0, "load": 1.0}) for p in phases]
    assert [r.reference_seconds for r in records] == [2.0, 3.0, None]
    assert "reference_seconds" not in records[2].model_dump(exclude_unset=True)  # left out
    assert over_reference(records) == "provision took 4.0 s more than the plan's reference"
    assert over_reference(records[:1]) is None


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


def _marked(at: float, step: str, action: str) -> tuple[float, str, dict[str, Any]]:
    return (at, ACTIVITY_EVENT, {"source": "lab GPU nodes of lab-east", "action": action,
                                 "status": "succeeded", "step": step})  # fmt: skip


def test_the_quarterly_report_shows_each_quarters_slowest_recovery_by_phase(
    tmp_path: Path,
) -> None:
    """The trend per phase: the same drill last quarter and this one, each quarter's
    slowest recovery split into its phases, in the HTML, the Markdown and the JSON."""
    copy_shipped_files(tmp_path)
    runs = tmp_path / "reports" / "runs"
    this = Quarter.current()
    start = this.start.timestamp() + 3600
    last = start - 100 * 86400  # in the quarter before

    def drill(at: float, outage: float, detect: float, provision: float, slug: str) -> None:
        marks = [
            _marked(at + 20 + detect, "detect", "take GPU node out of rotation"),
            _marked(at + 20 + provision, "provision", "start GPU node lab-east-node-5"),
        ]
        synthetic_run(runs, slug, at, outage=outage, extra_events=marks, page=False)

    drill(last, 6.0, 0.5, 4.0, "gpu-node-loss")
    drill(start, 4.0, 0.5, 2.0, "gpu-node-loss")
    drill(start + 300, 5.0, 1.0, 3.0, "gpu-node-loss")  # this quarter's slowest
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        done = CliRunner().invoke(cli, ["report", "--quarter", str(this),
                                        "--format", "html,json,md"])  # fmt: skip
    finally:
        os.chdir(cwd)
    assert done.exit_code == 0, done.output
    folder = tmp_path / "reports" / str(this)
    (row,) = json.loads((folder / "results.json").read_text())["phase_trend"]
    assert (row["drill"], row["component"]) == ("Losing half of the primary region's GPU nodes",
                                                "inference")  # fmt: skip
    before, now = row["quarters"]
    assert before["quarter"] == str(Quarter.of(datetime.fromtimestamp(last, UTC)))
    assert before["rto_seconds"] == 6.0 and now["rto_seconds"] == 5.0
    assert [(p["phase"], p["seconds"]) for p in now["phases"]] == [
        ("detect", 1.0), ("provision", 2.0), ("load+warm", 2.0)]  # fmt: skip
    assert sum(p["seconds"] for p in before["phases"]) == pytest.approx(6.0)
    page = (folder / "index.html").read_text()
    assert 'id="phase-trend"' in page and "Where the recovery time went" in page
    assert "detect 1.0 s · provision 2.0 s · load+warm 2.0 s" in page
    summary = (folder / "summary.md").read_text()
    assert "## Where the recovery time went" in summary
    assert f"{this} 5.0 s (detect 1.0 s, provision 2.0 s, load+warm 2.0 s)" in summary


def test_the_run_page_says_who_served_users_and_the_replacement_ends_the_load_phase(
    tmp_path: Path,
) -> None:
    """Recorded node headers, measured: the run's phases end the load step at the
    replacement's first answer, and its page lists each node with its first and last
    answer from the fault (node -2 lost with it, -3 the replacement)."""
    start = datetime(2026, 11, 2, 9, tzinfo=UTC).timestamp()
    run_dir = synthetic_run(tmp_path, "served", start, outage=5.0, served=True)
    inference = next(
        c for c in json.loads((run_dir / "result.json").read_text())["components"]
        if c["name"] == "inference"
    )  # fmt: skip
    phases = inference["achieved"]["phases"]
    assert [p["phase"] for p in phases] == ["detect+provision+load", "warm"], phases
    assert phases[0]["evidence"] == (
        "the load's answers: first answer from node lab-east-node-3, "
        "which served none before the fault"
    )
    page = (run_dir / "report.html").read_text()
    assert "Who served users" in page
    rows = re.findall(r"<tr><td>(lab-east-node-\d)</td><td>([^<]+)</td><td>([^<]+)</td>", page)
    assert rows == [("lab-east-node-1", "-20.0 s", "40.0 s"),
                    ("lab-east-node-2", "-20.0 s", "0.0 s"),
                    ("lab-east-node-3", "5.0 s", "40.0 s")], rows  # fmt: skip
    plain = synthetic_run(tmp_path, "plain", start + 3600)
    assert "Who served users" not in (plain / "report.html").read_text()


def test_a_data_tiers_phases_come_from_the_runbooks_recovery_steps() -> None:
    """A restore the experiment ran (a recovery step, recorded as the run went) marks
    detect where it started and provision where it succeeded; a failed one marks only
    its start, and a step that ended after the tier served again is off the path."""
    events = [
        Event(100.0, "fault_injected", {"activity": "delete-the-index"}),
        Event(102.0, "recovery_started", {"activity": "restore-from-snapshot"}),
        Event(
            102.4, "recovery_ended", {"activity": "restore-from-snapshot", "status": "succeeded"}
        ),
        Event(103.0, "recovery_started", {"activity": "retry"}),
        Event(104.0, "recovery_ended", {"activity": "retry", "status": "failed"}),
    ]
    marks = recovery_step_marks(events)
    assert [(m.time, m.data["step"], m.data["action"]) for m in marks] == [
        (102.0, "detect", "restore-from-snapshot started"),
        (102.4, "provision", "restore-from-snapshot finished"),
        (103.0, "detect", "retry started"),
    ]
    phases = recovery_phases(100.0, 103.0, marks, resolution=0.25, serving=False)
    assert [(p.name, round(p.seconds, 3)) for p in phases] == [
        ("detect", 2.0), ("provision", 0.4), ("load+warm", 0.6)]  # fmt: skip
    assert phases[1].evidence == "the experiment's recovery step: restore-from-snapshot finished"
    late = recovery_phases(100.0, 102.2, marks, resolution=0.1, serving=False)
    assert [p.name for p in late] == ["detect", "load+warm"]
    assert late[-1].evidence.endswith("(before provision was marked: served again before that)")
