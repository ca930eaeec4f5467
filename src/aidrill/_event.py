"""One timed record of what happened: a target's ground truth, an activity it shows.

Its own fields ride beside ``time`` and ``kind``; a reader narrows what it takes out.
"""

from __future__ import annotations

import time

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict  # pydantic checks these on Python < 3.12


@with_config(ConfigDict(extra="allow"))
class Event(TypedDict):
    time: float
    kind: str


class ActivityRecord(Event, total=False):
    """What a target's own API shows it did (a launch, a failover, a rebuild), with the
    recovery step it marks: a cloud's activity history, as an operator reads it."""

    region: str
    status: str
    action: str
    cause: str
    step: str
    tier: str


def activity_record(
    kind: str, region: str, action: str, cause: str, status: str = "succeeded",
    step: str | None = None, tier: str | None = None,
) -> ActivityRecord:  # fmt: skip
    """An activity stamped now (to the millisecond, as activity APIs show time)."""
    found: ActivityRecord = {"time": round(time.time(), 3), "kind": kind, "region": region,
                       "status": status, "action": action, "cause": cause}  # fmt: skip
    if step:
        found["step"] = step
    if tier:
        found["tier"] = tier
    return found
