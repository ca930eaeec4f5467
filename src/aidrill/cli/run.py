"""``aidrill run EXPERIMENT...``."""

from __future__ import annotations

from pathlib import Path

import click

from aidrill.cli._common import (
    console,
    plan_option,
    reports_errors,
    reports_option,
    state_dir_option,
)
from aidrill.cli._runs import (
    check_before_running,
    live_option,
    load_all,
    load_workers_option,
    parse_participants,
    participant_option,
    print_admission,
    print_not_run,
    refuse_if_any,
    run_all,
)
from aidrill.report import write_index
from aidrill.run import SuiteInterrupt


@click.command()
@click.argument("experiments", nargs=-1, required=True, type=click.Path(path_type=Path))
@plan_option
@reports_option
@state_dir_option
@click.option(
    "--heal",
    is_flag=True,
    help="Reset a target that is not nominal before each run (recorded in the evidence) "
    "instead of refusing to run.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate, resolve what each action would touch with read-only calls, print "
    "it against the plan's limits, and inject nothing.",
)
@participant_option
@live_option
@load_workers_option
@reports_errors
def run(
    experiments: tuple[Path, ...],
    plan_path: Path,
    reports_dir: Path,
    state_dir: Path,
    heal: bool,
    dry_run: bool,
    participants: tuple[str, ...],
    live: bool,
    load_workers: int | None,
) -> None:
    """Run experiments under load against the running lab and measure recovery.

    \b
    Exit codes (the worst run decides):
      0  every target was met
      1  a target was missed or not measured, or a run deviated, was interrupted
         or aborted
      2  bad input, or a run the plan refuses
      3  a run was invalid: the target was not nominal before it (pre-flight), a
         fault was not injected, a rollback failed, or the load stopped; it
         measured nothing
    A SIGINT/SIGTERM rolls the run back (exit 1, or 3 when a fault was cut short) and
    no further experiment runs.
    """
    people = parse_participants(participants)
    plan, loaded = load_all(list(experiments), plan_path)
    admissions = check_before_running(loaded, plan, state_dir)
    if dry_run:
        for experiment, admission in zip(loaded, admissions, strict=True):
            print_admission(experiment, admission)
        refused = any(admission.refused for admission in admissions)
        console.print(
            "dry run: nothing was injected"
            + ("; the real run would be refused (exit 2)" if refused else "")
        )
        raise SystemExit(2 if refused else 0)
    refuse_if_any(loaded, admissions)
    with SuiteInterrupt() as interrupt:
        outcomes = run_all(
            loaded,
            plan_path,
            reports_dir,
            state_dir,
            interrupt,
            heal=heal,
            participants=people,
            live=live,
            load_workers=load_workers,
        )
        write_index(reports_dir)
        print_not_run(loaded[len(outcomes) :], interrupt)
    if not outcomes:  # stopped before the first run began
        raise SystemExit(interrupt.exit_code)
    raise SystemExit(max(outcome.exit_code for outcome in outcomes))
