"""``aidrill run``: one experiment through chaoslib with the aidrill control."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from aidrill import _evidence as evidence
from aidrill.experiment import CONTROL_MODULE, LoadedExperiment
from aidrill.measure import ResultRecord

if TYPE_CHECKING:
    from chaoslib.types import Journal, Settings


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    status: str
    deviated: bool
    result: ResultRecord | None
    signal: str | None = None  # SIGINT/SIGTERM that interrupted the run, if one did

    @property
    def missed(self) -> bool:
        """A target not shown to be met: missed, inconclusive, or not measured (its
        evidence did not cover what the verdict needed)."""
        if self.result is None:
            return True
        summary = self.result.summary
        return bool(
            summary.get("missed") or summary.get("inconclusive") or summary.get("not measured")
        )

    @property
    def valid(self) -> bool:
        return self.result is not None and self.result.valid

    @property
    def exit_code(self) -> int:
        """0 every target met, 1 a target missed or not measured, or the run deviated or
        was stopped, 3 the run is invalid (it did not test what it was meant to)."""
        if not self.valid:
            return 3
        return 0 if self.status == "completed" and not self.deviated and not self.missed else 1


def run_experiment_file(
    experiment: LoadedExperiment,
    plan_path: Path,
    reports_dir: Path,
    state_dir: Path | None = None,
    heal: bool = False,
    participants: list[dict[str, str]] | None = None,
    load_workers: int | None = None,
) -> RunOutcome:
    """Run one validated experiment and return where its evidence is; ``load_workers``
    (``--load-workers``) replaces the experiment's ``load.workers``."""
    from chaoslib.exceptions import InterruptExecution
    from chaoslib.experiment import run_experiment

    run_dir = evidence.create_run_dir(reports_dir, experiment.slug)
    chaos_experiment = experiment.for_chaoslib()
    for control in chaos_experiment["controls"]:
        provider = control.get("provider") or {}
        if provider.get("module") == CONTROL_MODULE:
            provider["arguments"] = {
                "run_dir": str(run_dir),
                "plan": str(plan_path),
                "heal": heal,
                "participants": participants or [],
                "load_workers": load_workers,
            }
    config_vars: dict[str, str] = {}
    if state_dir is not None:
        config_vars["aidrill_state_dir"] = str(state_dir)
    settings: Settings = {"runtime": {"rollbacks": {"strategy": "always"}}}
    try:
        journal = run_experiment(
            chaos_experiment, settings=settings, experiment_vars=(config_vars, {})
        )
    except InterruptExecution:
        # chaoslib's own SIGTERM handler answered a signal that came after aidrill's run
        # had finished and handed its handlers back: the run's evidence is whole.
        outcome = read_outcome(run_dir, None)
        return replace(outcome, signal=outcome.signal or "SIGTERM")
    return read_outcome(run_dir, journal)


def read_outcome(run_dir: Path, journal: Journal | None) -> RunOutcome:
    result: ResultRecord | None
    try:
        document = json.loads((run_dir / evidence.RESULT_FILE).read_text(encoding="utf-8"))
        result = ResultRecord.parse(document)
    except (OSError, ValueError) as exc:  # a JSON error is a ValueError too
        logger.error("no readable result.json in %s: %s", run_dir, exc)
        result = None
    status = result.status if result is not None else str((journal or {}).get("status", "unknown"))
    signal = next(
        (
            str(e.data.get("signal"))
            for e in evidence.read_events(run_dir)
            if e.kind == "interrupted" and e.data.get("signal") in ("SIGINT", "SIGTERM")
        ),
        None,
    )
    return RunOutcome(run_dir, status, bool((journal or {}).get("deviated")), result, signal)
