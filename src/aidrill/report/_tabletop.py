"""Tabletop exercises: a recorded walk-through, no faults injected (YAML)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from aidrill._documents import read_document, validate_as
from aidrill.errors import InputError


class TabletopError(InputError):
    """A tabletop record that does not validate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Participant(_Strict):
    name: str = Field(min_length=1)
    role: str = Field(min_length=1)


class Gap(_Strict):
    description: str = Field(min_length=1)
    severity: str = Field(default="medium", pattern=r"^(low|medium|high|critical)$")
    component: str | None = None


class Action(_Strict):
    description: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    due: dt.date


class Tabletop(_Strict):
    kind: str = Field(pattern=r"^tabletop$")
    date: dt.date
    title: str = Field(min_length=1)
    facilitator: str = Field(min_length=1)
    participants: list[Participant] = Field(min_length=1)
    scenario: str = Field(min_length=1)
    components: list[str] = []
    steps: list[str] = Field(min_length=1)
    gaps: list[Gap] = []
    actions: list[Action] = []


TEMPLATE = """\
# A tabletop exercise: walk through a disaster on paper, no faults injected.
# Fill in every field, then check it with `aidrill tabletop check {name}`.
kind: tabletop
date: {today}
title: Primary region loss during a model release
facilitator: Jane Doe (SRE)
participants:
  - {{name: Jane Doe, role: facilitator}}
  - {{name: Sam Lee, role: ML platform on-call}}
  - {{name: Ana Ruiz, role: incident commander}}
scenario: >-
  The primary region becomes unreachable while a new model version is rolling out.
components: [inference, model-artifacts]
steps:
  - Detect the outage from alerts and the status page.
  - Decide to fail over; find the runbook and who may approve it.
  - Confirm the DR region has GPU capacity and the current model version.
gaps:
  - description: The runbook does not say who approves a region failover at night.
    severity: high
    component: inference
actions:
  - description: Name the failover approver in the runbook.
    owner: Ana Ruiz
    due: {due}
"""


def write_template(path: Path) -> Path:
    if path.exists():
        raise TabletopError("refusing to overwrite an existing file", file=path)
    today = dt.date.today()
    path.write_text(
        TEMPLATE.format(name=path.name, today=today, due=today + dt.timedelta(days=30)),
        encoding="utf-8",
    )
    return path


def load_tabletop(path: Path) -> Tabletop:
    document = read_document(path, TabletopError)
    return validate_as(document, Tabletop, TabletopError, "a tabletop record must be a mapping")


def collect_tabletops(directory: Path) -> list[tuple[Path, Tabletop]]:
    if not directory.is_dir():
        return []
    return [(path, load_tabletop(path)) for path in sorted(directory.glob("*.y*ml"))]
