"""Running experiments: chaoslib plus the aidrill control and the run directory."""

from aidrill.run._runner import RunOutcome, read_outcome, run_experiment_file

__all__ = ["RunOutcome", "read_outcome", "run_experiment_file"]
