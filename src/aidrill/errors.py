"""aidrill's one exception tree.

    DrillError                      root: everything aidrill raises on purpose
    ├── InputError                  bad input; the CLI exits 2
    │   ├── PlanError               a DR plan that does not validate
    │   ├── ExperimentError         an experiment that does not validate
    │   └── ProbeSetError           a probe set that does not validate
    ├── RefusedError                valid input that the plan forbids; exits 2
    ├── CloudError                  a cloud or cluster API is unreachable or refuses; exits 2
    ├── TargetNotNominalError       the target is not nominal before a run; exits 3
    ├── LabError                    the embedded lab cannot do what was asked
    │   └── LabNotRunningError      no lab is up in the state directory
    ├── LoadError                   the Locust load generator failed
    └── EvidenceError               a run directory cannot be written or read

Errors carry their context (file, line, field, phase) so a message can say
exactly where the problem is without a traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CloudError",
    "DrillError",
    "EvidenceError",
    "ExperimentError",
    "InputError",
    "LabError",
    "LabNotRunningError",
    "LoadError",
    "PlanError",
    "ProbeSetError",
    "RefusedError",
    "TargetNotNominalError",
]


class DrillError(Exception):
    """Root of every error aidrill raises on purpose."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.column = column

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class InputError(DrillError):
    """Input that cannot be used as given."""

    exit_code = 2


class PlanError(InputError):
    """A DR plan that does not validate."""


class ExperimentError(InputError):
    """An experiment that does not validate."""


class ProbeSetError(InputError):
    """A steady-state probe set that does not validate."""


class RefusedError(DrillError):
    """Valid input that the plan does not allow."""

    exit_code = 2


class CloudError(DrillError):
    """A cloud or cluster API that cannot be reached or refuses aidrill: no or expired
    credentials, an endpoint that does not answer, access denied, throttling. Before any
    fault it refuses the run (exit 2); after one, the run is invalid with it. ``code``:
    the API's own error code, where it gave one."""

    exit_code = 2
    code = ""


class TargetNotNominalError(DrillError):
    """The target is not in its nominal state, so a drill on it would prove nothing."""

    exit_code = 3

    def __init__(self, problems: list[str], healed: bool = False) -> None:
        tried = " (after a heal)" if healed else ""
        super().__init__(f"the target is not nominal{tried}: " + "; ".join(problems))
        self.problems = problems


class LabError(DrillError):
    """The embedded lab cannot do what was asked."""


class LabNotRunningError(LabError):
    """No lab answers in the given state directory."""


class LoadError(DrillError):
    """The Locust load generator failed."""


class EvidenceError(DrillError):
    """A run directory cannot be written or read."""
