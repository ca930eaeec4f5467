"""Evidence is appended, never overwritten; write failures are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aidrill._evidence import (
    _TIMELINES,
    EventLog,
    _decoded_timeline,
    create_run_dir,
    read_jsonl,
    read_timelines,
    write_new_file,
)
from aidrill.errors import EvidenceError
from aidrill.measure import Bucket


def test_run_directories_are_never_reused(tmp_path: Path) -> None:
    first = create_run_dir(tmp_path, "Same Title!", now=1_800_000_000)
    second = create_run_dir(tmp_path, "Same Title!", now=1_800_000_000)
    assert first != second
    assert first.name == "20270115T080000Z-same-title"
    assert second.name.endswith("-2")


def test_write_new_file_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    write_new_file(path, "first")
    with pytest.raises(EvidenceError, match="refusing to overwrite"):
        write_new_file(path, "second")
    assert path.read_text() == "first"


def test_a_full_disk_is_a_clear_evidence_error() -> None:
    log = EventLog(Path("/dev/full"))
    with pytest.raises(EvidenceError, match="No space left on device"):
        log.append("fault_injected", activity="x")
    log.close()


def test_a_write_that_fails_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "result.json"
    with pytest.raises(EvidenceError, match="cannot write evidence"):
        write_new_file(target, "{}")
    assert not target.exists()


def test_a_line_cut_by_a_crash_is_counted_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log.append("run_started")
    log.close()
    with path.open("a") as handle:
        handle.write('{"time": 1, "kind": "fault_inj')
    records, broken = read_jsonl(path)
    assert [r["kind"] for r in records] == ["run_started"]
    assert broken == 1
    assert json.loads(path.read_text().splitlines()[0])["kind"] == "run_started"


_LINES = [
    {"start": 10, "width": 1, "requests": 4, "failures": 0, "p50": 0.01, "p95": 0.02,
     "p99": None, "max": 0.05, "correct": 4, "scored": 4, "regions": {"east": 4}},
    {"start": 10.0, "width": 1.0, "requests": 2, "failures": 2, "p95": 0.3,
     "regions": {"west": 2}, "nodes": {"gpu-2": 2}},  # late answers of the same second
    {"start": 11.5, "width": 0.5, "requests": 3, "failures": 1, "series": "search",
     "max_age": 2.5, "extra": "ignored"},
    {"start": 12, "width": 1, "requests": 5, "failures": 0, "ttft_p95": 0.2, "itl_p95": 0.03,
     "tokens": 40, "token_seconds": 1.25, "correct": 4.5, "scored": 5},
]  # fmt: skip


def _timeline(tmp_path: Path, lines: list[str]) -> dict[str, list[Bucket]]:
    (tmp_path / "timeline.jsonl").write_text("\n".join(lines) + "\n")
    _TIMELINES.clear()
    return read_timelines(tmp_path)


def test_a_timeline_reads_the_same_in_one_step_as_line_by_line(tmp_path: Path) -> None:
    lines = [json.dumps(line) for line in _LINES]
    fast = _timeline(tmp_path, lines)
    assert _decoded_timeline(tmp_path / "timeline.jsonl") is not None  # the one-step way
    slow = _timeline(tmp_path, [*lines, '{"start": 13, "width": 1, "requ'])  # cut: line by line
    assert _decoded_timeline(tmp_path / "timeline.jsonl") is None
    assert fast == slow
    assert [type(b.correct) for b in fast["inference"]] == [float, float]
    merged = fast["inference"][0]
    assert (merged.requests, merged.failures, merged.regions) == (6, 2, {"east": 4, "west": 2})
    assert fast["search"][0].max_age == 2.5


def test_a_timeline_edited_by_hand_is_still_read_field_by_field(tmp_path: Path) -> None:
    edited = [json.dumps(line) for line in _LINES]
    edited[3] = edited[3].replace('"requests": 5', '"requests": "5"').replace("0.2", "NaN")
    last = _timeline(tmp_path, edited)["inference"][-1]
    assert _decoded_timeline(tmp_path / "timeline.jsonl") is None
    assert last.requests == 5 and last.ttft_p95 is not None and last.ttft_p95 != last.ttft_p95
    edited[1] = edited[1].replace('"failures": 2', '"failures": true')
    with pytest.raises(TypeError):
        _timeline(tmp_path, edited)
