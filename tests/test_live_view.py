"""The live view follows a run's evidence files as they grow (no lab needed: the files
are written here the way a run writes them)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from aidrill.cli._live import LiveState, LiveView
from aidrill.measure import HealthRule
from aidrill.plan import load_plan

from .conftest import PLAN

RULE = HealthRule(0.95, 0.5, 0.8)


def _bucket(start: float, failures: int, requests: int = 40) -> dict[str, object]:
    return {"start": start, "width": 1.0, "requests": requests, "failures": failures,
            "p95": 0.12, "correct": requests - failures, "scored": requests}  # fmt: skip


def test_the_state_names_phase_traffic_and_when_each_component_recovered() -> None:
    state = LiveState(RULE)
    state.event({"kind": "phase", "phase": "steady-state-before", "time": 100.0})
    state.bucket(_bucket(100.0, 0))
    assert state.component_states() == {"inference": "healthy"}
    state.event({"kind": "phase", "phase": "method", "time": 101.0})
    state.event({"kind": "fault_injected", "time": 101.0})
    state.bucket(_bucket(101.0, 30))
    state.sample({"component": "feature-store", "ok": False, "time": 102.0})
    assert state.phase == "observing"
    assert state.component_states() == {"feature-store": "impacted", "inference": "impacted"}
    assert state.traffic() == {"requests/s": "40", "errors": "75.0%", "p95": "120 ms",
                               "quality": "0.25"}  # fmt: skip
    state.bucket(_bucket(104.0, 0))
    state.sample({"component": "feature-store", "ok": True, "time": 106.5})
    assert state.component_states() == {
        "feature-store": "recovered at +5.5s",
        "inference": "recovered at +4.0s",
    }
    state.event({"kind": "phase", "phase": "rollbacks", "time": 110.0})
    assert state.phase == "rollback"
    assert state.since_fault(131.0) == "+30s"
    state.bucket({"start": "not a time"})  # a torn line never breaks the view


def test_plain_lines_follow_a_run_as_its_files_grow(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    (tmp_path / "runs").mkdir()
    with LiveView(console, tmp_path, load_plan(PLAN), "[1/1] drill", live=True):
        run_dir = tmp_path / "runs" / "20261127T000000Z-drill"
        run_dir.mkdir()
        now = time.time()
        events = run_dir / "events.jsonl"
        timeline = run_dir / "timeline.jsonl"
        with events.open("a") as e, timeline.open("a") as t:
            for record in ({"kind": "phase", "phase": "method", "time": now},
                           {"kind": "fault_injected", "time": now}):  # fmt: skip
                e.write(json.dumps(record) + "\n")
            t.write(json.dumps(_bucket(now, 40)) + "\n")
            t.write(json.dumps(_bucket(now + 3, 0)))  # no newline yet: not read
            e.flush()
            t.flush()
            time.sleep(1.5)
            t.write("\n")
            t.flush()
            time.sleep(1.5)
    text = out.getvalue()
    assert "[1/1] drill: running" in text
    assert "phase: injecting" in text and "phase: observing" in text
    assert "inference: impacted" in text and "inference: recovered at +4.0s" in text
    assert "requests/s 40" in text


def test_a_series_that_stops_arriving_is_shown_as_stale_not_as_its_last_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    state = LiveState(RULE, named=frozenset({"inference", "feature-store"}))
    state.event({"kind": "fault_injected", "time": 990.0})
    state.bucket(_bucket(996.0, 0))
    state.sample({"component": "feature-store", "ok": True, "time": 999.5})
    state.sample({"component": "vector-index", "ok": False, "time": 999.5})
    assert "requests/s" in state.traffic(1001.5), "live within two bucket widths"
    assert state.traffic(1004.0) == {"load": "no load answers for 7 s"}
    assert state.component_states(1004.0) == {
        "feature-store": "no samples for 4 s",
        "inference": "no load answers for 7 s",
    }, "a tier the plan does not name is never listed"
    assert "no load answers for 7 s" in state.line(1004.0)
    assert "all healthy" not in state.line(1004.0)
    clock[0] = 1004.5
    state.bucket(_bucket(997.0, 40))  # evidence again: live, and what it says
    assert state.traffic(1004.6)["errors"] == "100.0%"
    assert "all healthy" not in state.line(1004.6)
