"""``aidrill run EXPERIMENT...``."""

from __future__ import annotations

from pathlib import Path

import click

from aidrill.cli._common import (
    plan_option,
    reports_errors,
    reports_option,
    state_dir_option,
)
from aidrill.cli._runs import load_all, run_all
from aidrill.report import write_index


@click.command()
@click.argument("experiments", nargs=-1, required=True, type=click.Path(path_type=Path))
@plan_option
@reports_option
@state_dir_option
@reports_errors
def run(experiments: tuple[Path, ...], plan_path: Path, reports_dir: Path, state_dir: Path) -> None:
    """Run experiments under load against the running lab and measure recovery.

    Exit code 0 when every target was met, 1 when a target was missed or a run
    deviated, 2 on bad input.
    """
    _, loaded = load_all(list(experiments), plan_path)
    outcomes = run_all(loaded, plan_path, reports_dir, state_dir)
    write_index(reports_dir)
    raise SystemExit(max(outcome.exit_code for outcome in outcomes))
