"""``aidrill tabletop new|check``."""

from __future__ import annotations

from pathlib import Path

import click

from aidrill.cli._common import console, reports_errors
from aidrill.report import load_tabletop, write_template


@click.group()
def tabletop() -> None:
    """Record tabletop exercises (walk-throughs, no faults injected)."""


@tabletop.command()
@click.argument("file", type=click.Path(path_type=Path), default=Path("tabletops/tabletop.yaml"))
@reports_errors
def new(file: Path) -> None:
    """Write a tabletop template to fill in."""
    file.parent.mkdir(parents=True, exist_ok=True)
    write_template(file)
    console.print(f"wrote {file}; fill it in, then `aidrill tabletop check {file}`")


@tabletop.command()
@click.argument("file", type=click.Path(path_type=Path))
@reports_errors
def check(file: Path) -> None:
    """Validate one tabletop record."""
    record = load_tabletop(file)
    console.print(f"ok: {file} ({record.title}, {record.date}, {len(record.gaps)} gap(s))")
