"""Validity: whether a run tested what it was meant to, judged from its events alone.

A run is valid only when the target was nominal before the steady-state check, every
fault action of the method was injected, and every rollback succeeded with the target
nominal afterwards. An invalid run measures nothing: no component of it is met or
missed, whatever its timeline shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aidrill._json import JsonOut
from aidrill.measure._coverage import offset_text
from aidrill.measure._line import Line, text, texts
from aidrill.measure._records import Event


@dataclass(frozen=True)
class InvalidReason:
    """One thing that kept a run from testing what it was meant to."""

    what: str  # preflight | fault | rollback | postflight | refused | aborted | apparatus
    reason: str  # one sentence, naming the activity and its error where there is one
    activity: str | None = None
    error: str | None = None

    def to_record(self) -> dict[str, JsonOut]:
        return {
            "what": self.what,
            "activity": self.activity,
            "error": self.error,
            "reason": self.reason,
        }

    @classmethod
    def from_record(cls, record: Line) -> InvalidReason:
        return cls(
            what=str(record.get("what", "unknown")),
            reason=str(record.get("reason", "")),
            activity=text(record.get("activity")),
            error=text(record.get("error")),
        )


@dataclass(frozen=True)
class Validity:
    reasons: tuple[InvalidReason, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.reasons

    def summary(self) -> str:
        return "; ".join(r.reason for r in self.reasons)


def judge_validity(events: Sequence[Event]) -> Validity:
    """Every reason the events give for the run not to count (none: the run is valid)."""
    reasons: list[InvalidReason] = []
    injected: set[str] = set()
    failed: set[str] = set()
    planned: list[str] = []
    fault_at = next((e.time for e in events if e.kind == "fault_injected"), None)
    for event in events:
        data = event.data
        activity = _text(data.get("activity"))
        if event.kind == "run_started":
            planned = texts(data.get("planned_faults"))
        elif event.kind == "preflight_failed":
            reasons.append(
                InvalidReason(
                    "preflight",
                    "the target was not nominal before the run: " + _problems(data),
                )
            )
        elif event.kind == "refused":
            reasons.append(
                InvalidReason("refused", f"the run was refused: {data.get('reason')}", activity)
            )
        elif event.kind == "fault_injected" and activity is not None:
            injected.add(activity)
        elif event.kind == "fault_failed":
            error = _text(data.get("error"))
            failed.add(activity or "")
            reasons.append(
                InvalidReason(
                    "fault",
                    f"the fault {activity} was not injected: {error or 'it did not complete'}",
                    activity,
                    error,
                )
            )
        elif event.kind == "rollback_ran" and data.get("status") != "succeeded":
            error = _text(data.get("error"))
            reasons.append(
                InvalidReason(
                    "rollback",
                    f"the rollback {activity} failed: {error or 'it did not complete'}",
                    activity,
                    error,
                )
            )
        elif event.kind == "postflight_failed":
            reasons.append(
                InvalidReason(
                    "postflight",
                    "the target was not nominal after the rollbacks: " + _problems(data),
                )
            )
        elif event.kind == "method_not_run":
            checks = texts(data.get("failing_checks"))
            reasons.append(
                InvalidReason(
                    "method",
                    f"the method never ran: {data.get('reason')}"
                    + (f" ({'; '.join(checks)})" if checks else ""),
                )
            )
        elif event.kind == "apparatus_stopped" and data.get("fatal"):
            what = f"{data.get('part') or 'the measuring apparatus'} {data.get('how') or 'stopped'}"
            if fault_at is not None:
                what += f" at {offset_text(event.time - fault_at)}"
            reasons.append(
                InvalidReason(
                    "apparatus",
                    f"{what}: the run measured nothing after it, so it rolled back",
                )
            )
        elif event.kind == "run_aborted":
            reasons.append(
                InvalidReason("aborted", f"the run did not roll back: {data.get('reason')}")
            )
    for name in planned if not reasons else ():
        if name not in injected and name not in failed:
            reasons.append(InvalidReason("fault", f"the fault {name} was never injected", name))
    return Validity(tuple(reasons))


def _problems(data: Line) -> str:
    problems = texts(data.get("problems"))
    return "; ".join(problems) if problems else "no detail recorded"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
