"""Verdicts: met / missed / inconclusive / not measured, each with one sentence why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aidrill._durations import format_duration
from aidrill.measure._recovery import RecoveryMeasurement

VerdictStatus = Literal["met", "missed", "inconclusive", "not measured"]


@dataclass(frozen=True)
class Verdict:
    status: VerdictStatus
    reason: str


def judge_rto(
    target: float, measurement: RecoveryMeasurement | None, cause: str | None = None
) -> Verdict:
    """Compare an achieved RTO with its target.

    Not recovered counts as *missed* only when the observation window was at least as
    long as the target; a shorter window cannot prove the target was missed.
    ``cause`` is what the evidence says stood in the way of recovery, if anything.
    """
    if measurement is None:
        return Verdict("not measured", "this run produced no series for this component")
    goal = format_duration(target)
    if not measurement.impact:
        return Verdict("met", f"no user-visible impact; RTO 0s against a target of {goal}")
    rto = measurement.rto
    if rto is not None:
        achieved = format_duration(rto)
        if rto <= target:
            return Verdict("met", f"recovered in {achieved}, within the {goal} target")
        return Verdict("missed", f"recovered in {achieved}, over the {goal} target")
    window = format_duration(measurement.window)
    why = f" ({cause})" if cause else ""
    if measurement.window >= target:
        return Verdict(
            "missed", f"not recovered within the {window} observation window{why}; target {goal}"
        )
    return Verdict(
        "inconclusive",
        f"not recovered within the {window} observation window{why}, shorter than the "
        f"{goal} target",
    )
