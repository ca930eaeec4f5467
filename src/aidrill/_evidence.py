"""Files of a run directory: names, append-only writers and tolerant readers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson

from aidrill._documents import UnreadableFile, read_bytes
from aidrill.errors import EvidenceError
from aidrill.measure import Bucket, Event, ResultRecord

EXPERIMENT_FILE = "experiment.yaml"
PLAN_FILE = "plan.yaml"
JOURNAL_FILE = "journal.json"
EVENTS_FILE = "events.jsonl"
TIMELINE_FILE = "timeline.jsonl"
RESULT_FILE = "result.json"
REPORT_FILE = "report.html"
RUN_LOG_FILE = "run.log"
LOAD_PID_FILE = "load.pid"
PROBES_FILE = "probes.jsonl"  # every steady-state check with its figures
CANARY_FILE = "canary.jsonl"  # feature-store canary writes
CANARY_AUDIT_FILE = "canary-audit.json"  # which canary writes survived
INDEX_CANARY_FILE = "index-canary.jsonl"  # canary vectors written through the index API
REGISTRY_CANARY_FILE = "registry-canary.jsonl"  # canary changes to the model registry
REGISTRY_AUDIT_FILE = "registry-audit.json"  # which registry canary changes survived
COMPONENTS_FILE = "components.jsonl"  # probes of each stateful tier
HEALTH_FILE = "health.jsonl"  # the target's health signals, polled beside the load
ARTIFACT_VERSIONS_FILE = "artifact-versions.json"  # model versions before and after
DEFAULT_REPORTS_DIR = Path("reports")
EVIDENCE_LIMIT = 256 * 1024 * 1024  # no evidence file of a run is read past this size


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:60] or "experiment"


def create_run_dir(reports_dir: Path, slug: str, now: float | None = None) -> Path:
    """A new ``runs/<UTC stamp>-<slug>`` directory; an existing one is never reused."""
    runs = reports_dir / "runs"
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{slugify(slug)}"
    for attempt in range(1, 1000):
        candidate = runs / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            candidate.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        except OSError as exc:
            raise EvidenceError(f"cannot create run directory: {exc}", file=candidate) from exc
        return candidate
    raise EvidenceError("too many runs with the same stamp", file=runs / base)


def write_new_file(path: Path, text: str) -> None:
    """Write a file that must not exist yet, via a temporary name, so nothing is clobbered."""
    if path.exists():
        raise EvidenceError("refusing to overwrite existing evidence", file=path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EvidenceError(f"cannot write evidence: {exc}", file=path) from exc


class EventLog:
    """``events.jsonl``: appended, flushed and synced as things happen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._handle = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise EvidenceError(f"cannot open event log: {exc}", file=path) from exc

    def append(self, kind: str, when: float | None = None, **data: Any) -> Event:
        return self.append_fields(kind, data, when)

    def append_fields(
        self, kind: str, data: Mapping[str, object], when: float | None = None
    ) -> Event:
        """``append`` with the event's fields as one mapping (a record's ``to_record()``),
        so none of them can be taken for ``when``."""
        event = Event(time=when if when is not None else time.time(), kind=kind, data=dict(data))
        line = json.dumps(event.to_record(), default=str)
        with self._lock:
            if self._handle.closed:
                return event
            try:
                self._handle.write(line + "\n")
                self._handle.flush()
                os.fsync(self._handle.fileno())
            except OSError as exc:
                raise EvidenceError(f"cannot append event: {exc}", file=self.path) from exc
        return event

    def close(self) -> None:
        # A failed append already raised its error; closing must not raise it again.
        with self._lock, contextlib.suppress(OSError):
            self._handle.close()


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Records of a JSON-lines file and the count of unreadable lines (a crash may cut
    one). A missing file has none; a link, a FIFO or an oversized file is an error."""
    records: list[dict[str, Any]] = []
    broken = 0
    if not path.exists() and not path.is_symlink():
        return [], 0
    try:
        if path.is_symlink():
            raise UnreadableFile("a symbolic link")
        lines = read_bytes(path, EVIDENCE_LIMIT).decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise EvidenceError(f"cannot read evidence: {exc}", file=path) from exc
    for line in lines:
        if not line.strip():
            continue
        try:
            record = _loads(line)
        except ValueError:
            broken += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            broken += 1
    return records, broken


def _loads(line: str) -> Any:
    """One JSON line: orjson's speed (a quarter holds millions of buckets), Python's
    leniency where orjson refuses (NaN or Infinity written by json.dumps)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def read_events(run_dir: Path) -> list[Event]:
    records, _ = read_jsonl(run_dir / EVENTS_FILE)
    return sorted(
        (Event.from_record(r) for r in records if "time" in r and "kind" in r), key=lambda e: e.time
    )


def read_timeline(run_dir: Path, series: str | None = "inference") -> list[Bucket]:
    """The load's buckets of one series (user-visible inference by default; None: all),
    one per series and start: a bucket written again for a late answer is merged in."""
    every = read_timelines(run_dir)
    if series is not None:
        return every.get(series, [])
    return sorted((b for found in every.values() for b in found), key=lambda b: b.start)


def read_timelines(run_dir: Path) -> dict[str, list[Bucket]]:
    """Every series of the load's timeline: its buckets by series, each merged per start
    and in time order. The last two files read are kept (by size and modification
    time), so measuring a run and drawing it parse its timeline once."""
    path = run_dir / TIMELINE_FILE
    try:
        status = path.lstat()
        key: tuple[str, int, int] | None = (str(path), status.st_size, status.st_mtime_ns)
    except OSError:
        key = None
    found = _TIMELINES.get(key) if key is not None else None
    if found is None:
        found = _parse_timelines(path)
        if key is not None:
            if len(_TIMELINES) >= 2:
                _TIMELINES.pop(next(iter(_TIMELINES)))
            _TIMELINES[key] = found
    return {series: list(buckets) for series, buckets in found.items()}  # callers' own


_TIMELINES: dict[tuple[str, int, int], dict[str, list[Bucket]]] = {}


# A timeline as aidrill writes it decodes in one step, typed, in C (a third of the time).
# Anything else (a line cut by a crash, a number written as a string, NaN, a file that
# cannot be read) goes the line-by-line way, which reads what it can and says why not.
_TIMELINE_LINES = msgspec.json.Decoder(Bucket)


def _parse_timelines(path: Path) -> dict[str, list[Bucket]]:
    decoded = _decoded_timeline(path)
    if decoded is None:
        decoded = [Bucket.from_record(r) for r in read_jsonl(path)[0]]
    buckets: dict[tuple[str, float], Bucket] = {}
    for bucket in decoded:
        key = (bucket.series, bucket.start)
        buckets[key] = buckets[key].merged(bucket) if key in buckets else bucket
    by_series: dict[str, list[Bucket]] = {}
    for bucket in sorted(buckets.values(), key=lambda b: b.start):
        by_series.setdefault(bucket.series, []).append(bucket)
    return by_series


def _decoded_timeline(path: Path) -> list[Bucket] | None:
    try:
        if path.is_symlink():
            return None
        return _TIMELINE_LINES.decode_lines(read_bytes(path, EVIDENCE_LIMIT))
    except (OSError, msgspec.DecodeError):
        return None


def read_result(run_dir: Path) -> ResultRecord:
    """The run's ``result.json``, typed (the one reader of what the run wrote)."""
    path = run_dir / RESULT_FILE
    try:
        if path.is_symlink():
            raise UnreadableFile("a symbolic link")
        record = json.loads(read_bytes(path, EVIDENCE_LIMIT))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EvidenceError(f"cannot read the run's result: {exc}", file=path) from exc
    try:
        return ResultRecord.parse(record)
    except ValueError as exc:
        raise EvidenceError(f"result.json does not fit its schema: {exc}", file=path) from None
