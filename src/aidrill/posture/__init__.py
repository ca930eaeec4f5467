"""``aidrill posture``: what an AWS estate's configuration promises, per component of
the plan, beside what the drills measured."""

from aidrill.posture._backup import schedule_period
from aidrill.posture._model import Check, Estimate, estimate
from aidrill.posture._run import POSTURE_HTML, POSTURE_JSON, Posture, check_posture, write_posture

__all__ = [
    "POSTURE_HTML",
    "POSTURE_JSON",
    "Check",
    "Estimate",
    "Posture",
    "check_posture",
    "estimate",
    "schedule_period",
    "write_posture",
]
