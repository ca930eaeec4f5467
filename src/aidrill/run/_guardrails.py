"""A watcher that aborts a run when users are hurt past the plan's limits, or it runs long."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aidrill._durations import format_duration
from aidrill.measure import Bucket
from aidrill.plan import Guardrails

_POLL = 0.5


def breach_of(bucket: Bucket, limits: Guardrails) -> str | None:
    """Why one bucket is beyond the guardrails, or None."""
    if limits.max_error_ratio is not None and bucket.requests:
        ratio = bucket.failures / bucket.requests
        if ratio > limits.max_error_ratio:
            return f"error ratio {ratio:.0%} above {limits.max_error_ratio:.0%}"
    p95_limit = limits.max_p95_latency
    if p95_limit is not None and bucket.p95 is not None and bucket.p95 > p95_limit:
        return f"p95 latency {bucket.p95 * 1000:.0f}ms above {p95_limit * 1000:.0f}ms"
    return None


class GuardrailWatcher:
    """Tails timeline.jsonl and the wall clock; calls ``abort(reason)`` once."""

    def __init__(
        self,
        timeline: Path,
        limits: Guardrails,
        max_duration: float,
        abort: Callable[[str], None],
        started: float | None = None,
    ) -> None:
        self.timeline = timeline
        self.limits = limits
        self.max_duration = max_duration
        self._abort = abort
        self._stop = threading.Event()
        self._offset = 0
        self._breach_start: float | None = None
        self._breach_end: float | None = None
        # The maximum duration counts from ``started`` (time.monotonic()): the run passes
        # the moment it began starting the load, so the guardrail fires before the load's
        # own run time (the same duration and a margin, counted from its start) ends it.
        self._started = time.monotonic() if started is None else started
        self._thread = threading.Thread(target=self._watch, daemon=True, name="guardrails")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _watch(self) -> None:
        while not self._stop.wait(_POLL):
            reason = self._check()
            if reason is not None:
                self._abort(reason)
                return

    def _check(self) -> str | None:
        elapsed = time.monotonic() - self._started
        if elapsed > self.max_duration:
            return f"the run exceeded its maximum duration of {format_duration(self.max_duration)}"
        for bucket in self._new_buckets():
            why = breach_of(bucket, self.limits)
            contiguous = self._breach_end is not None and bucket.start - self._breach_end < 0.01
            if why is None:
                self._breach_start = self._breach_end = None
                continue
            if self._breach_start is None or not contiguous:
                self._breach_start = bucket.start
            self._breach_end = bucket.end
            if self._breach_end - self._breach_start >= self.limits.for_ - 1e-9:
                return f"guardrail: {why} for {format_duration(self.limits.for_)}"
        return None

    def _new_buckets(self) -> list[Bucket]:
        try:
            with self.timeline.open(encoding="utf-8") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        complete, _, _ = chunk.rpartition("\n")
        if not complete:
            return []
        self._offset += len(complete.encode()) + 1
        buckets = []
        for line in complete.splitlines():
            try:
                buckets.append(Bucket.from_record(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue
        return _merge_series(buckets)


def _merge_series(buckets: list[Bucket]) -> list[Bucket]:
    """Guardrails watch global traffic: one bucket per instant over every series
    (inference and search), failures summed, the worst p95 kept."""
    by_start: dict[float, list[Bucket]] = {}
    for bucket in buckets:
        by_start.setdefault(bucket.start, []).append(bucket)
    merged = []
    for start in sorted(by_start):
        group = by_start[start]
        p95s = [b.p95 for b in group if b.p95 is not None]
        merged.append(
            Bucket(
                start=start,
                width=group[0].width,
                requests=sum(b.requests for b in group),
                failures=sum(b.failures for b in group),
                p95=max(p95s) if p95s else None,
            )
        )
    return merged
