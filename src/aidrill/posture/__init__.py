"""``aidrill posture``'s record, whatever kind of target read it: each check's verdict
and evidence, the bounds a component's checks imply, and the files it writes. The
checks themselves belong to their kind (``aidrill.targets.aws.posture``)."""

from aidrill.posture._model import Check, Estimate, Outcome, Status, estimate
from aidrill.posture._record import (
    POSTURE_HTML,
    POSTURE_JSON,
    ComponentPosture,
    Posture,
    write_posture,
)

__all__ = [
    "POSTURE_HTML",
    "POSTURE_JSON",
    "Check",
    "ComponentPosture",
    "Estimate",
    "Outcome",
    "Posture",
    "Status",
    "estimate",
    "write_posture",
]
