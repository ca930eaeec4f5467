"""Verdicts: met / missed / inconclusive / not measured, each with one sentence why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aidrill._durations import format_seconds
from aidrill.measure._recovery import RecoveryMeasurement

VerdictStatus = Literal["met", "missed", "inconclusive", "not measured"]


@dataclass(frozen=True)
class Verdict:
    status: VerdictStatus
    reason: str


def judge_rto(
    target: float,
    measurement: RecoveryMeasurement | None,
    cause: str | None = None,
    uncovered: str | None = None,
) -> Verdict:
    """Compare an achieved RTO with its target.

    A recovery counts only once it has held for ``sustain`` inside the window, so the
    window can confirm recoveries up to ``window - sustain`` (the provable range). Not
    recovered is *missed* when that range reaches the target (window >= target +
    sustain): a recovery by the target would have been seen; or when the unhealthy
    buckets the window holds rule out every recovery that could have started by the
    target (``RecoveryMeasurement.ruled_out``), which needs window > target. Otherwise
    it is *inconclusive*. ``cause`` is what the evidence says stood in the way, if
    anything.

    A series with a gap the verdict needs (see ``RecoveryMeasurement.uncovered``) is *not
    measured*, whatever its buckets show: ``uncovered`` says which stretch and why.
    """
    if measurement is None:
        return Verdict("not measured", "this run produced no series for this component")
    gap = measurement.uncovered
    if gap is not None:
        return Verdict(
            "not measured",
            uncovered or gap.describe(measurement.t_fault, measurement.window_end, "evidence"),
        )
    goal = format_seconds(target)
    if not measurement.impact:
        return Verdict("met", f"no user-visible impact; RTO 0 s against a target of {goal}")
    rto = measurement.rto
    if rto is not None:
        achieved = format_seconds(rto, measurement.resolution)
        if rto <= target:
            return Verdict("met", f"recovered in {achieved}, within the {goal} target")
        return Verdict("missed", f"recovered in {achieved}, over the {goal} target")
    window = format_seconds(measurement.window)
    provable = format_seconds(measurement.provable_until)
    why = f" ({cause})" if cause else ""
    if measurement.provable_until >= target - 1e-9:
        return Verdict(
            "missed",
            f"not recovered within the {window} observation window{why}; a recovery by "
            f"the {goal} target would have been confirmed (the window proves up to {provable})",
        )
    ruled_out = measurement.ruled_out
    if ruled_out is not None and ruled_out > target + 1e-9:
        return Verdict(
            "missed",
            f"not recovered within the {window} observation window{why}; its unhealthy "
            f"answers up to {format_seconds(ruled_out, measurement.resolution)} after the "
            f"fault rule out a "
            f"recovery starting by the {goal} target (one must hold "
            f"{format_seconds(measurement.sustain)})",
        )
    return Verdict(
        "inconclusive",
        f"not shown within the {window} observation window{why}: it can confirm a recovery "
        f"only up to {provable} ({window} less the sustain of "
        f"{format_seconds(measurement.sustain)}), short of the {goal} target",
    )
