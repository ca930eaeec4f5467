"""The run watches its measuring apparatus: the load generator's processes, the canary
writers and the tier probes (DESIGN.md "Measurement", coverage).

Each part that stops is recorded once in ``events.jsonl`` (``apparatus_stopped``: which
part, how, the series it fed, and whether the run can go on without it). The load is
the run's eyes: when it stops before the observation window has ended, the run is
interrupted (every rollback still runs) and is invalid. Any other part only leaves a
gap in its own series, and the verdicts that need that series say so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from aidrill import _evidence as evidence
from aidrill._apparatus import ApparatusPart

logger = logging.getLogger(__name__)
_POLL = 0.25


class ApparatusWatch:
    def __init__(
        self,
        parts: Sequence[ApparatusPart],
        events: evidence.EventLog,
        on_fatal: Callable[[str], None],
        observing: Callable[[], bool],
    ) -> None:
        """``observing``: whether the observation window is still open (a load that
        stops during the rollbacks has already seen everything the verdicts read)."""
        self.parts = list(parts)
        self.events = events
        self.on_fatal = on_fatal
        self.observing = observing
        self._stopped: set[str] = set()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="apparatus-watch")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Before the run stops the apparatus itself: nothing after this is a failure."""
        self._halt.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def check_now(self) -> None:
        """One look at every part (the watch does this four times a second)."""
        for part in self.parts:
            if part.part in self._stopped:
                continue
            try:
                how = part.check()
            except Exception as exc:  # a check that fails says nothing about the part
                logger.error("cannot check %s: %s", part.part, exc)
                continue
            if how is None:
                continue
            self._stopped.add(part.part)
            fatal = part.fatal and self.observing()
            logger.error("%s %s", part.part, how)
            self.events.append(
                "apparatus_stopped", part=part.part, how=how, series=list(part.series), fatal=fatal
            )
            if fatal:
                self.on_fatal(f"{part.part} {how}")

    def _watch(self) -> None:
        while not self._halt.wait(_POLL):
            self.check_now()
