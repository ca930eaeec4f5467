"""Running a list of experiments with progress and a one-line summary per run."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.table import Table

from aidrill._durations import format_seconds
from aidrill._event import Event
from aidrill.cli._common import console
from aidrill.cli._live import LiveView
from aidrill.errors import DrillError, InputError, RefusedError
from aidrill.experiment import LoadedExperiment, Participant, load_experiment
from aidrill.measure import ComponentRecord
from aidrill.plan import Plan, load_plan
from aidrill.report import write_index
from aidrill.run import (
    RunOutcome,
    SuiteInterrupt,
    mark_runs_aborted,
    owner_alive,
    run_experiment_file,
)
from aidrill.targets import Admission, LeftFault, Target, target_for

_STYLE = {"met": "green", "missed": "red", "inconclusive": "yellow", "not measured": "dim"}


participant_option = click.option(
    "--participant",
    "participants",
    multiple=True,
    metavar="NAME:ROLE[:independent]",
    help="Someone taking part, kept in the evidence (repeat for each person); "
    "':independent' marks a tester independent of the system's owners.",
)


live_option = click.option(
    "--live/--no-live",
    default=True,
    show_default=True,
    help="A live panel while each drill runs (plain lines when not on a terminal).",
)


load_workers_option = click.option(
    "--load-workers",
    type=click.IntRange(0, 64),
    default=None,
    help="Run Locust as one master and N workers (default: the experiment's load.workers).",
)


def parse_participants(texts: tuple[str, ...]) -> list[dict[str, str]]:
    people = []
    for text in texts:
        try:
            people.append(Participant.parse(text).model_dump())
        except ValueError as exc:
            raise InputError(str(exc), field="--participant") from None
    return people


def run_suite(
    paths: list[Path],
    plan_path: Path,
    reports_dir: Path,
    state_dir: Path,
    heal: bool,
    participants: list[dict[str, str]],
    name: str,
    interrupt: SuiteInterrupt,
    live: bool = True,
    load_workers: int | None = None,
) -> list[RunOutcome]:
    """Validate every drill and check it is allowed before the first runs, run them in
    order (each run's pre-flight checks its target is nominal), print the summary.
    After a SIGINT/SIGTERM no further drill starts (see :func:`run_all`)."""
    started = time.perf_counter()
    plan, loaded = load_all(paths, plan_path)
    refuse_if_any(loaded, check_before_running(loaded, plan, state_dir))
    console.print(f"suite {name}: {len(loaded)} drill(s) against {plan.system}")
    outcomes = run_all(
        loaded,
        plan_path,
        reports_dir,
        state_dir,
        interrupt,
        heal=heal,
        participants=participants,
        live=live,
        load_workers=load_workers,
    )
    write_index(reports_dir)
    elapsed = time.perf_counter() - started
    print_summary(outcomes, title=f"Suite {name}: {len(outcomes)} drill(s) in {elapsed:.0f}s")
    print_not_run(loaded[len(outcomes) :], interrupt)
    return outcomes


def print_not_run(rest: list[LoadedExperiment], interrupt: SuiteInterrupt) -> None:
    """After an interrupt: which drills did not run, and why."""
    if interrupt.signal is None:
        return
    console.print(
        f"[bold yellow]{interrupt.signal}: the suite stopped[/]; the interrupted drill was "
        f"rolled back. {len(rest)} drill(s) not run"
        + (": " + ", ".join(e.title for e in rest) if rest else "")
    )


def suite_paths(plan: Plan, plan_path: Path, name: str) -> list[Path]:
    """The experiment files of the plan's suite ``name``, relative to the plan's folder."""
    if name not in plan.suites:
        known = ", ".join(sorted(plan.suites)) or "none"
        raise InputError(f"the plan has no suite {name!r} (its suites: {known})", field="--suite")
    base = plan_path.parent
    return [base / entry for entry in plan.suites[name]]


def load_all(paths: list[Path], plan_path: Path) -> tuple[Plan, list[LoadedExperiment]]:
    """Validate the plan and every experiment before anything runs."""
    plan = load_plan(plan_path)
    return plan, [load_experiment(path, plan) for path in paths]


def check_before_running(
    experiments: list[LoadedExperiment], plan: Plan, state_dir: Path
) -> list[Admission]:
    """Before anything runs, each experiment's admission (see ``Target.admit``): its
    target's identity (for AWS the STS account, for Kubernetes the kube contexts),
    every action's blast radius resolved against the live target with read-only calls,
    and every refusal of the plan's allow-list and limits. The dry run prints them; a
    real run goes ahead only when none holds a refusal."""
    admissions: list[Admission] = []
    for experiment in experiments:
        if experiment.extension is None:
            admissions.append(Admission("a plain experiment: nothing to resolve", []))
            continue
        target = target_for(experiment.extension.target, plan, state_dir)
        admissions.append(target.admit(experiment.raw))
    return admissions


def refuse_if_any(experiments: list[LoadedExperiment], admissions: list[Admission]) -> None:
    """RefusedError (exit 2) for the first experiment the plan refuses, naming why."""
    for experiment, admission in zip(experiments, admissions, strict=True):
        if admission.refused:
            raise RefusedError("; ".join(admission.refusals), file=experiment.path)


_SHOWN_RESOURCES = 8  # resource ids the dry run lists per action, then a count


def print_admission(experiment: LoadedExperiment, admission: Admission) -> None:
    table = Table(
        title=f"{experiment.title}: what it would touch (as {admission.identity})",
        title_justify="left",
    )
    table.add_column("action", overflow="fold")
    table.add_column("touches", overflow="fold")
    table.add_column("share of GPU nodes")
    table.add_column("limits", overflow="fold")
    for item in admission.resolved:
        share = "—" if item.share is None else f"{item.share:.0%}"
        verdict = f"[red]refused: {item.refused}[/]" if item.refused else "[green]within[/]"
        touches = item.touches
        if item.resources and not all(r in touches for r in item.resources):
            shown = ", ".join(item.resources[:_SHOWN_RESOURCES])
            more = len(item.resources) - _SHOWN_RESOURCES
            touches += f"\n({shown}{f', and {more} more' if more > 0 else ''})"
        table.add_row(item.action, touches, share, verdict)
    console.print(table)
    for refusal in admission.refusals:
        console.print(f"[bold red]refused:[/] {refusal}")


def run_all(
    experiments: list[LoadedExperiment],
    plan_path: Path,
    reports_dir: Path,
    state_dir: Path,
    interrupt: SuiteInterrupt,
    heal: bool = False,
    participants: list[dict[str, str]] | None = None,
    live: bool = True,
    load_workers: int | None = None,
) -> list[RunOutcome]:
    """Run each experiment in turn, shown live; with ``heal``, each starts from a
    nominal target. A SIGINT/SIGTERM during a drill rolls that drill back (its own
    guard) and ends the suite there; between drills it ends the suite at once. Returns
    the outcomes of the drills that ran."""
    plan = load_plan(plan_path)
    for kind in sorted({e.extension.target for e in experiments if e.extension is not None}):
        try:
            target = target_for(kind, plan, state_dir)
        except DrillError:
            continue  # the drill itself says why it cannot reach its target
        clear_faults_left_behind(target)
    outcomes = []
    for number, experiment in enumerate(experiments, start=1):
        if interrupt.signal is not None:
            break
        started = time.perf_counter()
        label = f"[{number}/{len(experiments)}] {experiment.title}"
        try:
            with LiveView(console, reports_dir, plan, label, live):
                interrupt.drill_running = True
                try:
                    outcome = run_experiment_file(
                        experiment,
                        plan_path,
                        reports_dir,
                        state_dir,
                        heal=heal,
                        participants=participants,
                        load_workers=load_workers,
                    )
                finally:
                    interrupt.drill_running = False
        except KeyboardInterrupt:
            # The suite's own handler, between drills: nothing of this one ran.
            console.print(f"{label} — interrupted before it ran")
            break
        outcomes.append(outcome)
        interrupt.saw(outcome.signal)
        console.print(
            f"{label} — {outcome.status}"
            f"{', deviated' if outcome.deviated else ''}"
            f"{'' if outcome.valid else ', [bold red]INVALID[/]'} in "
            f"{time.perf_counter() - started:.0f}s"
        )
        describe(outcome)
    return outcomes


def describe(outcome: RunOutcome) -> None:
    if outcome.result is None:
        console.print(f"    [red]no result[/]; evidence in {outcome.run_dir}")
        return
    result = outcome.result
    if result.plain:
        console.print("    a plain experiment: rollbacks always, evidence kept, nothing measured")
    for reason in result.invalid_reasons:
        console.print(f"    [red]invalid:[/] {reason.reason}")
    for check in result.target_checks:
        if check.check in ("healed before the run", "reset after the rollbacks"):
            found = check.model_extra or {}
            state = "nominal" if found.get("healed") else "[red]still not nominal[/]"
            console.print(f"    target {check.check} in {found.get('seconds')}s: {state}")
    for component in result.components:
        verdict = component.verdict
        console.print(
            f"    {component.name}: [{_STYLE[verdict]}]{verdict}[/] — {component.explanation}"
        )
        degradation = component.degradation
        if degradation is not None:
            console.print(f"      during the fault: {degradation.status} — {degradation.reason}")
    console.print(f"    report: {outcome.run_dir / 'report.html'}")


def report_aborted_runs(
    faults: list[LeftFault], by: str, ground_truth: Callable[[float], list[Event]]
) -> None:
    """Say which faults were cleared and mark the runs that left them as aborted."""
    for fault in faults:
        console.print(f"cleared {fault.kind} in {fault.region} left by {fault.owner}")
    reason = f"the run ended without rolling back; its faults were cleared by {by}"
    for run_dir in mark_runs_aborted(faults, reason, ground_truth):
        console.print(f"marked run {run_dir.name} aborted (evidence in {run_dir})")


def clear_faults_left_behind(target: Target) -> None:
    """Before a run: faults of a killed run are cleared; a live run's faults refuse ours."""
    faults = target.faults_left_behind()
    if not faults:
        return
    live = [f for f in faults if owner_alive(f)]
    if live:
        raise RefusedError(
            f"{live[0].owner} still has {live[0].kind} active in {live[0].region}; wait "
            "for it to finish"
        )
    with console.status("clearing faults left by an earlier run…"):
        cleared = target.clear_faults()
    report_aborted_runs(cleared, "`aidrill run`", target.ground_truth)


def print_summary(outcomes: list[RunOutcome], title: str = "Drills") -> None:
    """One row per drill: valid or not, each component's verdict, and its achieved RTO
    and RPO against the target."""
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("drill")
    table.add_column("valid")
    table.add_column("verdicts")
    table.add_column("RTO achieved / target")
    table.add_column("RPO achieved / target")
    for outcome in outcomes:
        components = outcome.result.components if outcome.result is not None else []
        measured = [c for c in components if c.verdict != "not measured"]
        verdicts = ", ".join(
            f"{c.name}: [{_STYLE.get(c.verdict, 'white')}]{c.verdict}[/]" for c in components
        )
        valid = "[green]yes[/]" if outcome.valid else "[bold red]NO[/]"
        table.add_row(
            outcome.run_dir.name.split("-", 1)[-1],
            valid,
            verdicts or "no result",
            "; ".join(f"{c.name} {_versus(c, 'rto')}" for c in measured) or "—",
            "; ".join(
                f"{c.name} {_versus(c, 'rpo')}"
                for c in measured
                if c.target.rpo_seconds is not None
            )
            or "—",
        )
    console.print(table)


def _versus(component: ComponentRecord, which: str) -> str:
    """Achieved against target, for ``rto`` or ``rpo``."""
    rto = which == "rto"
    achieved = component.achieved.rto_seconds if rto else component.achieved.rpo_seconds
    target = component.target.rto_seconds if rto else component.target.rpo_seconds
    if rto and component.achieved.recovered is False:
        shown = "not recovered"
    elif isinstance(achieved, int | float):
        shown = format_seconds(achieved)
    else:
        shown = str(achieved) if achieved is not None else "—"
    return f"{shown} / {format_seconds(target)}"
