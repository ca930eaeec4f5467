"""Chaos Toolkit journals: read leniently for reports, validated strictly on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aidrill._documents import Document, read_document, validate_as
from aidrill.errors import InputError


class JournalError(InputError):
    """A journal that is malformed or partial."""


class ActivityRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    activity: dict[str, Any]
    status: Literal["succeeded", "failed", "skipped"]
    start: str
    end: str | None = None
    output: Any = None


class Journal(BaseModel):
    """The parts of a Chaos Toolkit journal aidrill relies on."""

    model_config = ConfigDict(extra="allow")
    experiment: dict[str, Any]
    status: Literal["completed", "failed", "aborted", "interrupted"]
    deviated: bool = False
    start: str
    end: str | None = None
    run: list[ActivityRecord] = Field(default_factory=list)
    rollbacks: list[ActivityRecord] = Field(default_factory=list)


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
