"""Reading run directories and plain Chaos Toolkit journals for a report.

Nothing is dropped silently: a run that cannot be read becomes a record that says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from aidrill import _evidence as evidence
from aidrill.measure import Bucket, Event, RunResult
from aidrill.report._journal import Journal, looks_like_journal

RunKind = Literal["aidrill", "plain", "broken"]


@dataclass
class RunRecord:
    """One run as a report sees it."""

    run_id: str
    path: Path
    kind: RunKind
    title: str
    started: datetime | None
    status: str
    result: dict[str, Any] | None = None
    journal: Journal | None = None
    experiment: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def run_result(self) -> RunResult | None:
        """``result.json`` as the run wrote it, typed (aidrill runs only)."""
        return RunResult.from_record(self.result) if self.result is not None else None

    @property
    def invalid_reasons(self) -> list[str]:
        """Why the run did not test what it was meant to (empty when it did).

        An aidrill run says so itself; a plain Chaos Toolkit run is judged from its
        journal: an action of its method or a rollback that failed."""
        if self.kind == "aidrill":
            result = self.run_result
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
        if self.result:
            return str(self.result.get("test_type", "chaos"))
        return "chaos" if self.kind == "plain" else "unknown"

    @property
    def components(self) -> list[dict[str, Any]]:
        return list((self.result or {}).get("components", []))

    def events(self) -> list[Event]:
        return evidence.read_events(self.path) if self.path.is_dir() else []

    def timeline(self) -> list[Bucket]:
        return evidence.read_timeline(self.path) if self.path.is_dir() else []


def _activity_name(record: Any) -> str:
    return str((getattr(record, "activity", None) or {}).get("name", "unnamed"))


def collect_runs(runs_dir: Path) -> list[RunRecord]:
    """Every run directory and loose journal under ``runs_dir``, oldest first."""
    records: list[RunRecord] = []
    if not runs_dir.is_dir():
        return records
    for entry in sorted(runs_dir.iterdir()):
        if entry.is_dir():
            records.append(_read_run_dir(entry))
        elif entry.suffix == ".json":
            records.append(_read_loose_journal(entry))
    return sorted(records, key=lambda r: (r.started or datetime.min.replace(tzinfo=UTC), r.run_id))


def _read_run_dir(path: Path) -> RunRecord:
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    result_path = path / evidence.RESULT_FILE
    journal_path = path / evidence.JOURNAL_FILE
    experiment = _read_yaml(path / evidence.EXPERIMENT_FILE)
    if result_path.exists():
        try:
            result = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            return _broken(path, f"result.json is unreadable: {exc}", files)
        journal, _ = _read_journal(journal_path)
        return RunRecord(
            run_id=path.name,
            path=path,
            kind="aidrill",
            title=str(result.get("experiment")),
            started=_parse_time(result.get("started")),
            status=str(result.get("status")),
            result=result,
            journal=journal,
            experiment=experiment,
            files=files,
        )
    if journal_path.exists():
        record = _read_loose_journal(journal_path, run_id=path.name)
        record.path, record.files = path, files
        if record.kind == "plain" and (path / evidence.EVENTS_FILE).exists():
            record.problem = "the run left events but no result.json: it did not finish"
        return record
    if (path / evidence.EVENTS_FILE).exists():
        return _broken(
            path,
            "the run left events but no journal or result: it crashed "
            "before finishing (run `aidrill lab reset` to mark it aborted)",
            files,
        )
    return _broken(path, "no journal.json or result.json in this directory", files)


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
        experiment=journal.experiment,
        files=[path],
    )


def _read_journal(path: Path) -> tuple[Journal | None, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no journal"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"malformed journal: {exc}"
    if not looks_like_journal(data):
        return None, "not a Chaos Toolkit journal (no experiment and run)"
    try:
        return Journal.model_validate(data), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return None, f"partial journal: {where}: {first['msg']}"


def _broken(path: Path, problem: str, files: list[Path], run_id: str | None = None) -> RunRecord:
    started = _stamp_of(path.name)
    if started is None:
        started = datetime.fromtimestamp(path.stat().st_mtime, UTC)
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
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


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
