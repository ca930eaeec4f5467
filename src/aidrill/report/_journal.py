"""Chaos Toolkit journals: read leniently for reports, validated strictly on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from aidrill._documents import Document, read_document, validate_as
from aidrill.errors import InputError


class JournalError(InputError):
    """A journal that is malformed or partial."""


class ActivityRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    # pydantic resolves these at runtime: chaoslib's names for them serve type checkers only
    activity: dict[str, JsonValue]
    status: Literal["succeeded", "failed", "skipped"]
    start: str
    end: str | None = None
    output: Any = None


class Journal(BaseModel):
    """The parts of a Chaos Toolkit journal aidrill relies on."""

    model_config = ConfigDict(extra="allow")
    experiment: dict[str, JsonValue]
    status: Literal["completed", "failed", "aborted", "interrupted"]
    deviated: bool = False
    start: str
    end: str | None = None
    run: list[ActivityRecord] = Field(default_factory=list)
    rollbacks: list[ActivityRecord] = Field(default_factory=list)


def sanitize_experiment(data: Any) -> dict[str, Any]:
    """A foreign experiment in the shapes the report reads, whatever it held: lists of
    activities that are mappings, each with a string name and type and a mapping as
    provider (a provider's ``arguments`` stay as given: a process's may be a string or
    a list). Nothing is invented; what cannot be read that way is left out."""
    if not isinstance(data, dict):
        return {}
    clean = dict(data)
    clean["title"] = str(data.get("title") or "untitled experiment")
    for key in ("method", "rollbacks"):
        clean[key] = [_activity(a) for a in _list(data.get(key)) if isinstance(a, dict)]
    clean["extensions"] = [e for e in _list(data.get("extensions")) if isinstance(e, dict)]
    for key in ("configuration", "secrets"):
        clean[key] = data.get(key) if isinstance(data.get(key), dict) else {}
    hypothesis = data.get("steady-state-hypothesis")
    if hypothesis is not None and not isinstance(hypothesis, dict):
        clean.pop("steady-state-hypothesis")
    return clean


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _activity(activity: dict[str, Any]) -> dict[str, Any]:
    clean = dict(activity)
    clean["name"] = str(activity.get("name") or "unnamed")
    clean["type"] = str(activity.get("type") or "unknown")
    provider = activity.get("provider")
    clean["provider"] = dict(provider) if isinstance(provider, dict) else {}
    if not isinstance(activity.get("pauses"), dict | None):
        clean.pop("pauses")
    return clean


def looks_like_journal(data: Any) -> bool:
    return isinstance(data, dict) and "experiment" in data and ("run" in data or "status" in data)


def journal_from_document(document: Document) -> Journal:
    journal = validate_as(document, Journal, JournalError, "a journal must be a JSON object")
    if not journal.experiment.get("title"):
        raise JournalError(
            "the journal's experiment has no title", file=document.path, field="experiment.title"
        )
    return journal


def load_journal(path: Path) -> Journal:
    """Read and validate a journal; errors name the file and the field."""
    return journal_from_document(read_document(path, JournalError))
