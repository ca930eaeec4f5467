"""aidrill: disaster-recovery drills and chaos experiments for AI systems.

Stages, one sub-package each: ``plan`` → ``experiment`` → ``run`` → ``load`` →
``measure`` → ``report``; ``lab`` is the embedded target beside them.
"""

from aidrill.errors import (
    DrillError,
    EvidenceError,
    ExperimentError,
    InputError,
    LabError,
    PlanError,
    RefusedError,
)

__version__ = "0.1.0"

__all__ = [
    "DrillError",
    "EvidenceError",
    "ExperimentError",
    "InputError",
    "LabError",
    "PlanError",
    "RefusedError",
    "__version__",
]
