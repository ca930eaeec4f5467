"""Running a list of experiments with progress and a one-line summary per run."""

from __future__ import annotations

import time
from pathlib import Path

from aidrill.cli._common import console
from aidrill.experiment import LoadedExperiment, load_experiment
from aidrill.lab import LabClient
from aidrill.plan import Plan, load_plan
from aidrill.run import RunOutcome, run_experiment_file

_STYLE = {"met": "green", "missed": "red", "inconclusive": "yellow", "not measured": "dim"}


def load_all(paths: list[Path], plan_path: Path) -> tuple[Plan, list[LoadedExperiment]]:
    """Validate the plan and every experiment before anything runs."""
    plan = load_plan(plan_path)
    return plan, [load_experiment(path, plan) for path in paths]


def run_all(
    experiments: list[LoadedExperiment],
    plan_path: Path,
    reports_dir: Path,
    state_dir: Path,
) -> list[RunOutcome]:
    if any(e.extension.target == "lab" for e in experiments):
        LabClient(state_dir).status()  # fail fast, before the first run, if no lab answers
    outcomes = []
    for number, experiment in enumerate(experiments, start=1):
        started = time.perf_counter()
        label = f"[{number}/{len(experiments)}] {experiment.title}"
        with console.status(
            f"{label}: running (load, steady state, fault, observation, rollbacks)…"
        ):
            outcome = run_experiment_file(experiment, plan_path, reports_dir, state_dir)
        outcomes.append(outcome)
        console.print(
            f"{label} — {outcome.status}"
            f"{', deviated' if outcome.deviated else ''} in "
            f"{time.perf_counter() - started:.0f}s"
        )
        describe(outcome)
    return outcomes


def describe(outcome: RunOutcome) -> None:
    if outcome.result is None:
        console.print(f"    [red]no result[/]; evidence in {outcome.run_dir}")
        return
    for component in outcome.result["components"]:
        verdict = component["verdict"]
        console.print(
            f"    {component['name']}: [{_STYLE[verdict]}]{verdict}[/] — {component['explanation']}"
        )
    console.print(f"    report: {outcome.run_dir / 'report.html'}")
