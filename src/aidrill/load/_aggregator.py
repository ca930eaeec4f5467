"""Per-bucket aggregation of request results inside the Locust process.

Memory is bounded: only buckets still open (younger than the request timeout) are
kept; closed buckets are written to ``timeline.jsonl`` and dropped.

Distributed (Locust's ``--master``/``--worker``): each worker's aggregator drains its
open buckets into every report it sends to the master as mergeable partials (counts,
sums and the latency histogram's bins); the master's aggregator merges them and writes
the timeline. Merging is exact: the same samples give the same buckets however they
were split between workers.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aidrill.measure import Bucket, LatencyHistogram


@dataclass(slots=True)
class _OpenBucket:
    start: float
    series: str
    index: int
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    requests: int = 0
    failures: int = 0
    correct: float = 0.0
    scored: int = 0
    regions: Counter[str] = field(default_factory=Counter)
    max_age: float | None = None

    def older(self, age: float | None) -> None:
        if age is not None and (self.max_age is None or age > self.max_age):
            self.max_age = age

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
            max_age=self.max_age,
        )


_BATCH = 256  # results counted together


class BucketAggregator:
    """Collects results by request start time and streams closed buckets as JSON lines."""

    def __init__(self, path: Path | None, width: float, grace: float) -> None:
        self.width = width
        self.grace = grace
        self._open: dict[tuple[str, int], _OpenBucket] = {}
        # Each series' latest bucket: nearly every answer lands in it.
        self._last: dict[str, _OpenBucket] = {}
        self._pending: list[tuple[Any, ...]] = []
        # A worker keeps no file: it sends what it holds to the master.
        self._handle: IO[str] | None = path.open("a", encoding="utf-8") if path else None

    def add(
        self,
        start_time: float,
        latency: float,
        ok: bool,
        quality: float | None,
        region: str | None,
        series: str = "inference",
        age: float | None = None,
    ) -> None:
        """One result; ``quality`` is 1/0 for a scored answer, recall for a search;
        ``age``: how old the data behind the answer was."""
        # Called once per answer between two requests, when little of the aggregator is
        # in the CPU's caches: results wait in a short list and are counted in a batch
        # (benchmarks/README.md, "Load at scale": 4.0-4.8 us per answer in all against
        # 7.0-7.8 us counting each at once). Every read (drain, flush) counts what waits
        # first.
        self._pending.append((start_time, latency, ok, quality, region, series, age))
        if len(self._pending) >= _BATCH:
            self._count_pending()

    def _count_pending(self) -> None:
        pending, self._pending = self._pending, []
        for start_time, latency, ok, quality, region, series, age in pending:
            index = math.floor(start_time / self.width)
            bucket = self._last.get(series)
            if bucket is None or bucket.index != index:
                bucket = self._last[series] = self._bucket((series, index))
            bucket.requests += 1
            bucket.histogram.record(latency)
            if not ok:
                bucket.failures += 1
            if quality is not None:
                bucket.scored += 1
                bucket.correct += quality
            if region:
                bucket.regions[region] += 1
            bucket.older(age)

    def _bucket(self, key: tuple[str, int]) -> _OpenBucket:
        bucket = self._open.get(key)
        if bucket is None:
            bucket = self._open[key] = _OpenBucket(
                start=key[1] * self.width, series=key[0], index=key[1]
            )
        return bucket

    def drain(self) -> list[dict[str, Any]]:
        """Every open bucket as a mergeable partial (a worker's report), then forget them."""
        self._count_pending()
        partials = [
            {
                "series": series,
                "index": index,
                "requests": b.requests,
                "failures": b.failures,
                "correct": b.correct,
                "scored": b.scored,
                "regions": sorted(b.regions.items()),
                "bins": sorted(b.histogram.bins().items()),
                "max_age": b.max_age,
            }
            for (series, index), b in sorted(self._open.items())
        ]
        self._open.clear()
        self._last.clear()
        return partials

    def merge(self, partials: list[dict[str, Any]]) -> None:
        """Add workers' partials (the master); a malformed one is dropped whole."""
        for partial in partials:
            try:
                key = (str(partial["series"]), int(partial["index"]))
                bins = {int(b): int(n) for b, n in partial["bins"]}
                regions = {str(r): int(n) for r, n in partial["regions"]}
                counts = (int(partial["requests"]), int(partial["failures"]),
                          float(partial["correct"]), int(partial["scored"]))  # fmt: skip
            except (KeyError, TypeError, ValueError):
                continue
            bucket = self._bucket(key)
            bucket.histogram.merge(LatencyHistogram(bins))
            bucket.regions.update(regions)
            bucket.requests += counts[0]
            bucket.failures += counts[1]
            bucket.correct += counts[2]
            bucket.scored += counts[3]
            age = partial.get("max_age")
            bucket.older(float(age) if isinstance(age, int | float) else None)

    def flush(self, now: float, final: bool = False) -> int:
        """Write every bucket that can no longer receive results; return how many."""
        self._count_pending()
        ready = sorted(
            (key for key, bucket in self._open.items()
             if final or bucket.start + self.width + self.grace <= now),
            key=lambda key: (key[1], key[0]),
        )  # fmt: skip
        if self._handle is None or self._handle.closed:
            return 0
        if ready:
            self._last.clear()  # never add to a bucket already written
        for key in ready:
            record = self._open.pop(key).close(self.width).to_record()
            self._handle.write(json.dumps(record) + "\n")
        if ready:
            self._handle.flush()
        return len(ready)

    @property
    def closed(self) -> bool:
        return self._handle is not None and self._handle.closed

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
