"""``aidrill drill [--suite NAME]``: an ordered suite of drills from the plan."""

from __future__ import annotations

from pathlib import Path

import click

from aidrill.cli._common import (
    plan_option,
    reports_errors,
    reports_option,
    state_dir_option,
)
from aidrill.cli._runs import (
    live_option,
    load_workers_option,
    parse_participants,
    participant_option,
    run_suite,
    suite_paths,
)
from aidrill.plan import load_plan
from aidrill.run import SuiteInterrupt


@click.command()
@click.option(
    "--suite",
    default="quarterly",
    show_default=True,
    help="Which of the plan's suites (its `suites:` section) to run.",
)
@plan_option
@reports_option
@state_dir_option
@click.option(
    "--heal/--no-heal",
    default=True,
    show_default=True,
    help="Reset a target that is not nominal before each drill (recorded in the evidence).",
)
@participant_option
@live_option
@load_workers_option
@reports_errors
def drill(
    suite: str,
    plan_path: Path,
    reports_dir: Path,
    state_dir: Path,
    heal: bool,
    participants: tuple[str, ...],
    live: bool,
    load_workers: int | None,
) -> None:
    """Run the plan's suite of drills in order, pre-flight before each, and print a
    summary of every drill (valid, verdicts, RTO and RPO against target).

    \b
    Exit codes (the worst drill decides): 0 every target met; 1 a target missed or not
    measured, or a drill deviated or was aborted; 2 bad input or refused; 3 a drill was
    invalid; 130/143 the suite was stopped by SIGINT/SIGTERM (the drill running then
    was rolled back, and no further drill ran).
    """
    people = parse_participants(participants)
    plan = load_plan(plan_path)
    paths = suite_paths(plan, plan_path, suite)
    with SuiteInterrupt() as interrupt:
        outcomes = run_suite(
            paths,
            plan_path,
            reports_dir,
            state_dir,
            heal,
            people,
            suite,
            interrupt,
            live,
            load_workers,
        )
    if interrupt.signal is not None:
        raise SystemExit(interrupt.exit_code)
    raise SystemExit(max(outcome.exit_code for outcome in outcomes))
