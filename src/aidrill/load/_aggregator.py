"""Per-bucket aggregation of request results inside the Locust process.

Memory is bounded: only buckets still open (younger than the request timeout) are
kept; closed buckets are written to ``timeline.jsonl`` and dropped.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from aidrill.measure import Bucket, LatencyHistogram


@dataclass
class _OpenBucket:
    start: float
    series: str
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    requests: int = 0
    failures: int = 0
    correct: float = 0.0
    scored: int = 0
    regions: Counter[str] = field(default_factory=Counter)

    def close(self, width: float) -> Bucket:
        h = self.histogram
        return Bucket(
            start=self.start,
            width=width,
            requests=self.requests,
            failures=self.failures,
            p50=h.quantile(0.50),
            p95=h.quantile(0.95),
            p99=h.quantile(0.99),
            max=h.maximum(),
            correct=self.correct,
            scored=self.scored,
            regions=dict(self.regions),
            series=self.series,
        )


class BucketAggregator:
    """Collects results by request start time and streams closed buckets as JSON lines."""

    def __init__(self, path: Path, width: float, grace: float) -> None:
        self.width = width
        self.grace = grace
        self._open: dict[tuple[str, int], _OpenBucket] = {}
        self._handle: IO[str] = path.open("a", encoding="utf-8")

    def add(
        self,
        start_time: float,
        latency: float,
        ok: bool,
        quality: float | None,
        region: str | None,
        series: str = "inference",
    ) -> None:
        """One result; ``quality`` is 1/0 for a scored answer, recall for a search."""
        index = math.floor(start_time / self.width)
        key = (series, index)
        bucket = self._open.get(key)
        if bucket is None:
            bucket = self._open[key] = _OpenBucket(start=index * self.width, series=series)
        bucket.requests += 1
        bucket.histogram.record(latency)
        if not ok:
            bucket.failures += 1
        if quality is not None:
            bucket.scored += 1
            bucket.correct += quality
        if region:
            bucket.regions[region] += 1

    def flush(self, now: float, final: bool = False) -> int:
        """Write every bucket that can no longer receive results; return how many."""
        ready = sorted(
            (key for key, bucket in self._open.items()
             if final or bucket.start + self.width + self.grace <= now),
            key=lambda key: (key[1], key[0]),
        )  # fmt: skip
        for key in ready:
            record = self._open.pop(key).close(self.width).to_record()
            self._handle.write(json.dumps(record) + "\n")
        if ready:
            self._handle.flush()
        return len(ready)

    def close(self) -> None:
        self._handle.close()
