"""A probe on a fixed clock: one attempt every ``interval``, each in a worker thread.

A probe that waits for its answer (a black-holed endpoint, a store crawling at 128 KiB/s)
must not delay the next one: the series would then hold one sample per timeout instead
of one per interval, and the holes would read as missing evidence. Here the clock
thread only starts attempts; each attempt runs, times out and writes its sample on its
own (stamped with the instant it started), with at most ``max_in_flight`` waiting at
once, so a dead tier shows as a steady series of failed samples.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from aidrill._apparatus import Heartbeats

logger = logging.getLogger(__name__)


class Schedule:
    def __init__(
        self,
        name: str,
        interval: float,
        probe: Callable[[float], None],
        stop: threading.Event,
        deadline: float,
        beats: Heartbeats,
        max_in_flight: int = 8,
    ) -> None:
        self.name = name
        self.interval = interval
        self.probe = probe
        self._stop = stop
        self._deadline = deadline
        self._beats = beats
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix=f"probe-{name}")
        self._clock = threading.Thread(target=self._tick, daemon=True, name=f"clock-{name}")

    def start(self) -> None:
        self._clock.start()

    def join(self, timeout: float) -> None:
        self._clock.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _tick(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            self._beats.beat(self.name)
            if self._slots.acquire(blocking=False):
                self._pool.submit(self._attempt, time.time())
            else:
                # Every slot still waits for an answer: the tier is that slow, and the
                # samples already in flight will say so when their timeouts end.
                logger.debug("%s: every attempt still waits for its answer", self.name)
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _attempt(self, started: float) -> None:
        try:
            if not self._stop.is_set():
                self.probe(started)
        except Exception as exc:  # one failed attempt is a failed sample, never the clock
            logger.error("the %s probe failed: %s", self.name, exc)
        finally:
            self._slots.release()
