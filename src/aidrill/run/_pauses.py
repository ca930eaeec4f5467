"""Pauses after an activity that a signal cuts short.

chaoslib sleeps an activity's ``pauses.after`` in a ``finally`` block and never sets
the flag that would skip it, so a Ctrl-C or SIGTERM that lands inside an action waits
out the whole pause before the rollbacks start: a fault stays injected for as long as
the experiment meant to watch it. aidrill takes the pause out of the activity before
chaoslib reads it and sleeps it in the after-activity control instead, where an
interrupted activity skips it and a signal during it interrupts it. The activity's
``pauses`` mapping is put back before that sleep, so journals record the experiment
as written. With the experiment's ``hold-until-recovered``, a pause in the method after
a fault was injected (after the fault itself, or after a step that restores what it
took) ends as soon as the evidence shows every measured component recovered and held
for the sustain: the pause is then the longest the run waits, not a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chaoslib import substitute

from aidrill._json import Configuration, Json, JsonObject, Secrets

if TYPE_CHECKING:
    from chaoslib.types import Activity


_POLL = 0.5  # seconds between two looks at the evidence during a hold


class HeldPauses:
    def __init__(self) -> None:
        self._held: dict[int, tuple[JsonObject, Json]] = {}

    def take(self, activity: Activity) -> None:
        """Hold ``activity``'s pause after it, before chaoslib reads it."""
        pauses = activity.get("pauses")
        if isinstance(pauses, dict) and "after" in pauses:
            self._held[id(activity)] = (pauses, pauses.pop("after"))

    def give_back(
        self,
        activity: Activity,
        configuration: Configuration | None,
        secrets: Secrets | None,
    ) -> float:
        """Put the pause back into ``activity``; return its length in seconds."""
        held = self._held.pop(id(activity), None)
        if held is None:
            return 0.0
        pauses, after = held
        pauses["after"] = after
        value = substitute({"after": after}, configuration, secrets).get("after")
        try:
            return max(0.0, float(value))
        except (TypeError, ValueError):
            return 0.0

    def sleep_after(
        self,
        activity: Activity,
        configuration: Configuration | None,
        secrets: Secrets | None,
        interrupted: Callable[[], bool],
        log: Callable[[str], None],
        done: Callable[[], bool] | None = None,
    ) -> float | None:
        """Sleep the pause; with ``done``, end it as soon as ``done()`` is true (asked
        every ``_POLL`` seconds). Returns the seconds held when it ended early."""
        seconds = self.give_back(activity, configuration, secrets)
        if not seconds or interrupted():
            return None
        log(f"Pausing after activity for {seconds:g}s...")
        if done is None:
            time.sleep(seconds)
            return None
        start = time.monotonic()
        deadline = start + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(_POLL, left))
            if time.monotonic() < deadline and done():
                return time.monotonic() - start
        return None
