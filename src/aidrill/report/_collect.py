"""Reading run directories and plain Chaos Toolkit journals for a report.

Nothing is dropped silently: a run that cannot be read becomes a record that says why.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
import stat
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from aidrill import _evidence as evidence
from aidrill._documents import UnreadableFile, read_bytes, read_document
from aidrill._manifest import run_changes
from aidrill.errors import DrillError, InputError
from aidrill.measure import Bucket, ComponentRecord, Event, ResultRecord
from aidrill.report._journal import (
    Journal,
    JournalError,
    looks_like_journal,
    sanitize_experiment,
)
from aidrill.report._recompute import recompute
from aidrill.report._sparkline import downsample, timeline_sparkline

if TYPE_CHECKING:
    from chaoslib.types import Experiment


RunKind = Literal["aidrill", "plain", "broken"]
_EVIDENCE_LIMIT = 64 * 1024 * 1024  # a journal or result larger than this is not read


@dataclass
class RunRecord:
    """One run as a report sees it."""

    run_id: str
    path: Path
    kind: RunKind
    title: str
    started: datetime | None
    status: str
    result: ResultRecord | None = None  # measured from its evidence (aidrill runs)
    journal: Journal | None = None
    experiment: Experiment = field(default_factory=dict)
    problem: str | None = None
    files: list[Path] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (relative path, target)
    notes: list[str] = field(default_factory=list)
    # Where the run's own result.json disagrees with what its evidence measures (the
    # report uses the evidence); "result.json is missing" when there was none.
    disagreements: list[str] = field(default_factory=list)
    # The inference series downsampled for its chart, taken while the run's timeline
    # was read anyway (None: not taken; the chart reads the timeline itself).
    chart_buckets: list[Bucket] | None = None
    chart: str | None = None  # drawn where the timeline was read (collect_runs)

    @property
    def invalid_reasons(self) -> list[str]:
        """Why the run did not test what it was meant to (empty when it did).

        An aidrill run says so itself; a plain Chaos Toolkit run is judged from its
        journal: an action of its method or a rollback that failed."""
        if self.kind == "aidrill":
            result = self.result
            if result is None:
                return ["the run has no result"]
            if result.valid:
                return []
            return [r.reason for r in result.invalid_reasons] or [
                "the run does not record that it was valid (written before aidrill "
                "recorded validity)"
            ]
        if self.kind == "plain" and self.journal is not None:
            return [
                f"the {phase} {_activity_name(r)} failed"
                for phase, records in (
                    ("action", self.journal.run),
                    ("rollback", self.journal.rollbacks),
                )
                for r in records
                if r.status == "failed"
                and (phase == "rollback" or r.activity.get("type") == "action")
            ]
        return []

    @property
    def valid(self) -> bool:
        """Counts toward targets, cadence and retests: readable and valid."""
        return self.kind != "broken" and not self.invalid_reasons

    @property
    def test_type(self) -> str:
        if self.result is not None:
            return self.result.test_type
        return "chaos" if self.kind == "plain" else "unknown"

    @property
    def components(self) -> list[ComponentRecord]:
        return list(self.result.components) if self.result is not None else []

    def events(self) -> list[Event]:
        return evidence.read_events(self.path) if self.path.is_dir() else []

    def timeline(self) -> list[Bucket]:
        return evidence.read_timeline(self.path) if self.path.is_dir() else []


def _activity_name(record: Any) -> str:
    return str((getattr(record, "activity", None) or {}).get("name", "unnamed"))


def check_runs_path(path: Path) -> bool:
    """Refuse (InputError, exit 2) a ``--runs`` path that holds nothing a report could
    read: missing, a file that is not a journal, or a folder whose contents are neither
    run directories nor journals. An empty folder is a quarter with no runs yet: False
    (the caller says so), True otherwise."""
    if path.is_symlink() or not path.exists():
        raise InputError("no such file or folder", file=path, field="--runs")
    if path.is_file():
        record = _read_loose_journal(path)
        if record.kind == "broken":
            raise InputError(f"not a run: {record.problem}", file=path, field="--runs")
        return True
    if not path.is_dir():
        raise InputError("not a file or folder", file=path, field="--runs")
    entries = list(path.iterdir())
    if entries and not any(e.is_dir() or e.suffix == ".json" for e in entries):
        raise InputError(
            "holds no run directory and no Chaos Toolkit journal (*.json)",
            file=path,
            field="--runs",
        )
    return bool(entries)


_PARALLEL_FROM = 16  # below this many runs a process pool costs more than it saves


def collect_runs(runs_dir: Path, chart_p95: float | None = None) -> list[RunRecord]:
    """Every run directory and loose journal under ``runs_dir`` (or the one journal
    ``runs_dir`` is), oldest first. Whatever cannot be read becomes a broken record with
    its reason; nothing here raises. With ``chart_p95`` (the plan's p95 SLO, seconds)
    each run's chart is drawn too, where its timeline was just read."""
    records: list[RunRecord] = []
    if runs_dir.is_file() and not runs_dir.is_symlink():
        return [_read_loose_journal(runs_dir)]
    if not runs_dir.is_dir():
        return records
    entries = sorted(runs_dir.iterdir())
    read = functools.partial(_read_safely, chart_p95=chart_p95)
    if len(entries) < _PARALLEL_FROM:
        found = [read(entry) for entry in entries]
    else:  # each run is measured again from its evidence: on every core
        with ProcessPoolExecutor(min(os.cpu_count() or 1, 4)) as pool:
            found = list(pool.map(read, entries, chunksize=8))
    records = [record for record in found if record is not None]
    return sorted(records, key=lambda r: (r.started or datetime.min.replace(tzinfo=UTC), r.run_id))


def _read_safely(entry: Path, chart_p95: float | None = None) -> RunRecord | None:
    try:
        record = _read_entry(entry)
        if record is not None and record.kind == "aidrill":
            with contextlib.suppress(DrillError):
                record.chart_buckets = downsample(record.timeline())
            if chart_p95 is not None:
                record.chart = draw_chart(record, chart_p95)
                record.chart_buckets = None  # drawn: not pickled back to the parent
        return record
    except Exception as exc:  # one bad input must never take the report down
        return _broken(entry, f"cannot be read: {type(exc).__name__}: {exc}", [])


def _read_entry(entry: Path) -> RunRecord | None:
    mode = entry.lstat().st_mode
    name = entry.name if stat.S_ISDIR(mode) else entry.stem
    if stat.S_ISLNK(mode):
        why = f"a symbolic link to {os.readlink(entry)}: not followed"
        return _broken(entry, why, [], run_id=name)
    if stat.S_ISDIR(mode):
        return _read_run_dir(entry)
    if entry.suffix != ".json":
        return None
    if not stat.S_ISREG(mode):
        return _broken(entry, "not a regular file: not read", [], run_id=name)
    return _read_loose_journal(entry)


@dataclass(frozen=True)
class RunFiles:
    """A run directory's contents, found without following a link out of it."""

    regular: list[Path]
    links: list[tuple[Path, str]]  # (path, where it points): recorded, never read
    special: list[Path]  # FIFOs, devices, sockets: recorded, never read


def list_run_files(path: Path) -> RunFiles:
    regular: list[Path] = []
    links: list[tuple[Path, str]] = []
    special: list[Path] = []
    for folder, dirs, names in os.walk(path, followlinks=False):
        here = Path(folder)
        for name in sorted(dirs):
            if (here / name).is_symlink():
                links.append((here / name, os.readlink(here / name)))
        for name in sorted(names):
            if name.startswith("."):
                continue
            item = here / name
            mode = item.lstat().st_mode
            if stat.S_ISLNK(mode):
                links.append((item, os.readlink(item)))
            elif stat.S_ISREG(mode):
                regular.append(item)
            else:
                special.append(item)
    return RunFiles(sorted(regular), links, special)


def _read_run_dir(path: Path) -> RunRecord:
    found = list_run_files(path)
    files = found.regular
    notes = [
        f"{link.relative_to(path)} is a symbolic link to {target}: not followed, not copied"
        for link, target in found.links
    ] + [f"{item.relative_to(path)} is not a regular file: not copied" for item in found.special]
    readable = set(files)
    result_path = path / evidence.RESULT_FILE
    journal_path = path / evidence.JOURNAL_FILE
    experiment = _read_yaml(path / evidence.EXPERIMENT_FILE, readable)
    record: RunRecord
    if result_path in readable:
        try:
            result = json.loads(read_bytes(result_path, _EVIDENCE_LIMIT))
        except (OSError, ValueError, RecursionError) as exc:
            return _broken(path, f"result.json is unreadable: {exc}", files, notes=notes)
        if not isinstance(result, dict):
            return _broken(path, "result.json is not a JSON object", files, notes=notes)
        journal = _read_journal(journal_path)[0] if journal_path in readable else None
        measured, disagree, why = _measured(path, result, journal)
        disagree = run_changes(path) + disagree
        if measured is None:
            return _broken(path, f"result.json is there, but {why}", files, notes=notes)
        record = _measured_record(path, measured, journal, experiment, files, disagree)
    elif (path / evidence.EVENTS_FILE) in readable and (path / evidence.PLAN_FILE) in readable:
        # An aidrill run without its result.json: measured from its evidence, and said.
        journal = _read_journal(journal_path)[0] if journal_path in readable else None
        measured, _, why = _measured(path, None, journal)
        if measured is None or journal is None:
            why = why or "no journal: it crashed before finishing (`aidrill lab reset`)"
            return _broken(path, f"the run has no result.json and {why}", files, notes=notes)
        missing = ["result.json is missing: the run was measured from its evidence"]
        record = _measured_record(path, measured, journal, experiment, files, missing)
    elif journal_path in readable:
        record = _read_loose_journal(journal_path, run_id=path.name)
        record.path, record.files = path, files
        if record.kind == "plain" and (path / evidence.EVENTS_FILE) in readable:
            record.problem = "the run left events but no result.json: it did not finish"
    elif (path / evidence.EVENTS_FILE) in readable:
        record = _broken(
            path,
            "the run left events but no journal or result: it crashed "
            "before finishing (run `aidrill lab reset` to mark it aborted)",
            files,
        )
    else:
        why = "no journal.json or result.json in this directory"
        if result_path.is_symlink() or journal_path.is_symlink():
            why = "its result or journal is a symbolic link: not followed"
        record = _broken(path, why, files)
    record.links = [(str(link.relative_to(path)), target) for link, target in found.links]
    record.notes = notes
    return record


def _measured_record(
    path: Path,
    measured: ResultRecord,
    journal: Journal | None,
    experiment: Experiment,
    files: list[Path],
    disagreements: list[str],
) -> RunRecord:
    """An aidrill run as its evidence measures it (never as its result.json says)."""
    return RunRecord(
        run_id=path.name,
        path=path,
        kind="aidrill",
        title=measured.experiment,
        started=_parse_time(measured.started),
        status=measured.status,
        result=measured,
        journal=journal,
        experiment=experiment,
        files=files,
        disagreements=disagreements,
    )


def _measured(
    path: Path, recorded: dict[str, Any] | None, journal: Journal | None
) -> tuple[ResultRecord | None, list[str], str | None]:
    status = journal.status if journal is not None else None
    deviated = journal.deviated if journal is not None else None
    return recompute(path, recorded, status, deviated)


def _read_loose_journal(path: Path, run_id: str | None = None) -> RunRecord:
    run_id = run_id or path.stem
    journal, problem = _read_journal(path)
    if journal is None:
        return _broken(path, problem or "unreadable journal", [path], run_id)
    return RunRecord(
        run_id=run_id,
        path=path,
        kind="plain",
        title=str(journal.experiment.get("title")),
        started=_parse_time(journal.start),
        status=journal.status,
        journal=journal,
        experiment=sanitize_experiment(journal.experiment),
        files=[path],
    )


def _read_journal(path: Path) -> tuple[Journal | None, str | None]:
    try:
        document = read_document(path, JournalError, limit=_EVIDENCE_LIMIT)
    except JournalError as exc:
        if exc.message == "file not found":
            return None, "no journal"
        return None, f"malformed journal: {exc.message}" + (
            f" (line {exc.line})" if exc.line else ""
        )
    data = document.data
    if not looks_like_journal(data):
        return None, "not a Chaos Toolkit journal (no experiment and run)"
    try:
        return Journal.model_validate(data), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return None, f"partial journal: {where}: {first['msg']}"


def _broken(
    path: Path,
    problem: str,
    files: list[Path],
    run_id: str | None = None,
    notes: list[str] | None = None,
) -> RunRecord:
    started = _stamp_of(path.name)
    if started is None:
        started = datetime.fromtimestamp(path.lstat().st_mtime, UTC)
        problem += " (date taken from the file's modification time)"
    return RunRecord(
        run_id=run_id or path.name,
        path=path,
        kind="broken",
        title=path.name,
        started=started,
        status="unreadable",
        problem=problem,
        files=files,
        notes=notes or [],
    )


def _read_yaml(path: Path, readable: set[Path]) -> dict[str, Any]:
    if path not in readable:
        return {}
    try:  # within read_document's bounds; a quarter's runs share a dozen experiments
        key = hashlib.sha256(read_bytes(path)).hexdigest()
    except (OSError, UnreadableFile):
        return {}
    if key not in _EXPERIMENTS:
        try:
            data = read_document(path, InputError).data
        except InputError:
            return {}
        if len(_EXPERIMENTS) >= 64:
            _EXPERIMENTS.clear()
        _EXPERIMENTS[key] = sanitize_experiment(data)
    return copy.deepcopy(_EXPERIMENTS[key])


# Parsed experiment copies by content, once per process.
_EXPERIMENTS: dict[str, dict[str, Any]] = {}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp_of(name: str) -> datetime | None:
    try:
        return datetime.strptime(name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def draw_chart(record: RunRecord, p95_latency: float) -> str:
    """The run's timeline chart (SVG), or "" for a run without one."""
    if record.kind != "aidrill":
        return ""
    buckets = record.chart_buckets
    if buckets is None:
        try:
            buckets = downsample(record.timeline())
        except DrillError:
            return ""
    result = record.result
    if not buckets or result is None:
        return ""
    return timeline_sparkline(
        buckets,
        result.fault_at,
        result.observation_end_at,
        result.inference_recovered_at,
        p95_latency,
    )
