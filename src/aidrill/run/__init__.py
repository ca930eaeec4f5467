"""Running experiments: chaoslib plus the aidrill control and the run directory."""

from aidrill.run._aborted import mark_runs_aborted, owner_alive
from aidrill.run._runner import RunOutcome, read_outcome, run_experiment_file
from aidrill.run._signals import SuiteInterrupt

__all__ = [
    "RunOutcome",
    "SuiteInterrupt",
    "mark_runs_aborted",
    "owner_alive",
    "read_outcome",
    "run_experiment_file",
]
