"""Running experiments: chaoslib plus the aidrill control and the run directory."""

from aidrill.run._aborted import mark_runs_aborted, owner_alive
from aidrill.run._results import compute_run_result
from aidrill.run._runner import RunOutcome, read_outcome, run_experiment_file
from aidrill.run._signals import SuiteInterrupt

__all__ = [
    "RunOutcome",
    "SuiteInterrupt",
    "compute_run_result",
    "mark_runs_aborted",
    "owner_alive",
    "read_outcome",
    "run_experiment_file",
]
