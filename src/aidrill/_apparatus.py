"""The measuring apparatus of a run, part by part, so the run can watch it.

The load generator's processes, the canary writers and the tier probes each produce a
series some verdict reads. A part that stops (a process exits, a thread dies, a loop
stops ticking) leaves a gap in that series; the run records when and how in
``events.jsonl`` (``apparatus_stopped``), and measurement names it beside the gap.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ApparatusPart:
    """One part: its name in a sentence, the series it feeds, whether the run cannot go
    on without it (the load), and a check that says how it stopped (None: working)."""

    part: str
    series: tuple[str, ...]
    check: Callable[[], str | None]
    fatal: bool = False


def process_check(process: subprocess.Popen[bytes]) -> Callable[[], str | None]:
    """A process part: stopped once it has exited, with its exit code."""

    def check() -> str | None:
        code = process.poll()
        return None if code is None else f"exited with {code}"

    return check


class Heartbeats:
    """When each loop of a part last went round, and why it ended if it did."""

    def __init__(self) -> None:
        self._beats: dict[str, float] = {}
        self._ended: dict[str, str] = {}
        self._lock = threading.Lock()

    def beat(self, name: str) -> None:
        self._beats[name] = time.monotonic()

    def ended(self, name: str, why: str) -> None:
        with self._lock:
            self._ended.setdefault(name, why)

    def check(self, name: str, stall: float) -> Callable[[], str | None]:
        """A loop part: stopped once it ended unexpectedly or has not gone round for
        ``stall`` seconds."""

        def check() -> str | None:
            with self._lock:
                why = self._ended.get(name)
            if why is not None:
                return why
            last = self._beats.get(name)
            if last is not None and time.monotonic() - last > stall:
                return f"stopped going round for {stall:.0f} s"
            return None

        return check
