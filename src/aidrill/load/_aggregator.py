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
    nodes: Counter[str] = field(default_factory=Counter)
    max_age: float | None = None
    # Streamed answers only: time to first token, inter-token gaps, output tokens and
    # the seconds spent streaming them.
    ttft: LatencyHistogram | None = None
    itl: LatencyHistogram | None = None
    tokens: int = 0
    token_seconds: float = 0.0

    def streamed(self) -> tuple[LatencyHistogram, LatencyHistogram]:
        if self.ttft is None or self.itl is None:
            self.ttft, self.itl = LatencyHistogram(), LatencyHistogram()
        return self.ttft, self.itl

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
            nodes=dict(self.nodes),
            max_age=self.max_age,
            ttft_p95=None if self.ttft is None else self.ttft.quantile(0.95),
            itl_p95=None if self.itl is None else self.itl.quantile(0.95),
            tokens=self.tokens,
            token_seconds=self.token_seconds,
        )


_BATCH = 256  # results counted together


def _streamed_partial(
    partial: dict[str, Any],
) -> tuple[LatencyHistogram, LatencyHistogram, int, float] | None:
    """A worker's streamed-answer figures for one bucket, or None when it had none."""
    if "ttft_bins" not in partial:
        return None
    ttft = LatencyHistogram({int(b): int(n) for b, n in partial["ttft_bins"]})
    itl = LatencyHistogram({int(b): int(n) for b, n in partial["itl_bins"]})
    return ttft, itl, int(partial["tokens"]), float(partial["token_seconds"])


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
        node: str | None = None,
    ) -> None:
        """One result; ``quality`` is 1/0 for a scored answer, recall for a search;
        ``age``: how old the data behind the answer was; ``region`` and ``node``: who
        served it, where the server says."""
        # Called once per answer between two requests, when little of the aggregator is
        # in the CPU's caches: results wait in a short list and are counted in a batch
        # (benchmarks/README.md, "Load at scale": 4.0-4.8 us per answer in all against
        # 7.0-7.8 us counting each at once). Every read (drain, flush) counts what waits
        # first.
        self._pending.append((start_time, latency, ok, quality, region, series, age, node))
        if len(self._pending) >= _BATCH:
            self._count_pending()

    def add_stream(
        self,
        start_time: float,
        series: str,
        ttft: float | None,
        gaps: list[float],
        tokens: int,
        seconds: float,
    ) -> None:
        """What one streamed answer showed beyond its latency: its time to first token,
        the gaps between its tokens, and its output tokens over the seconds they took.
        The answer itself is counted by ``add``."""
        bucket = self._bucket((series, math.floor(start_time / self.width)))
        first, between = bucket.streamed()
        if ttft is not None:
            first.record(ttft)
        between.record_many(gaps)
        bucket.tokens += tokens
        bucket.token_seconds += seconds

    def _count_pending(self) -> None:
        pending, self._pending = self._pending, []
        for start_time, latency, ok, quality, region, series, age, node in pending:
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
            if node:
                bucket.nodes[node] += 1
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
                "nodes": sorted(b.nodes.items()),
                "bins": sorted(b.histogram.bins().items()),
                "max_age": b.max_age,
                **(
                    {}
                    if b.ttft is None or b.itl is None
                    else {
                        "ttft_bins": sorted(b.ttft.bins().items()),
                        "itl_bins": sorted(b.itl.bins().items()),
                        "tokens": b.tokens,
                        "token_seconds": b.token_seconds,
                    }
                ),
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
                nodes = {str(r): int(n) for r, n in partial.get("nodes") or ()}
                counts = (int(partial["requests"]), int(partial["failures"]),
                          float(partial["correct"]), int(partial["scored"]))  # fmt: skip
                streamed = _streamed_partial(partial)
            except (KeyError, TypeError, ValueError):
                continue
            bucket = self._bucket(key)
            bucket.histogram.merge(LatencyHistogram(bins))
            bucket.regions.update(regions)
            bucket.nodes.update(nodes)
            bucket.requests += counts[0]
            bucket.failures += counts[1]
            bucket.correct += counts[2]
            bucket.scored += counts[3]
            age = partial.get("max_age")
            bucket.older(float(age) if isinstance(age, int | float) else None)
            if streamed is not None:
                first, between = bucket.streamed()
                first.merge(streamed[0])
                between.merge(streamed[1])
                bucket.tokens += streamed[2]
                bucket.token_seconds += streamed[3]

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
