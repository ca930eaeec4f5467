"""Evidence is appended, never overwritten; write failures are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aidrill._evidence import EventLog, create_run_dir, read_jsonl, write_new_file
from aidrill.errors import EvidenceError


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
