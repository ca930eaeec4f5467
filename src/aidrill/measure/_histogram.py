"""A mergeable latency histogram with bounded memory (log-spaced bins, ~2% precision)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

_GROWTH = 1.02
_SMALLEST = 0.0001  # seconds; anything faster lands in bin 0
_LOG_GROWTH = math.log(_GROWTH)


class LatencyHistogram:
    """Counts latencies in log-spaced bins; histograms merge by adding counts."""

    __slots__ = ("_bins", "count")

    def __init__(self, bins: Mapping[int, int] | None = None) -> None:
        self._bins: Counter[int] = Counter(bins or {})
        self.count = sum(self._bins.values())

    def record(self, seconds: float) -> None:
        # Called once per answer by the load generator: the bin's formula is inline.
        if seconds <= _SMALLEST:
            self._bins[0] += 1
        else:
            self._bins[1 + math.floor(math.log(seconds / _SMALLEST) / _LOG_GROWTH)] += 1
        self.count += 1

    def record_many(self, values: list[float]) -> None:
        """Every value at once (a streamed answer's inter-token gaps)."""
        log, floor, smallest, growth = math.log, math.floor, _SMALLEST, _LOG_GROWTH
        self._bins.update(
            [0 if v <= smallest else 1 + floor(log(v / smallest) / growth) for v in values]
        )
        self.count += len(values)

    def merge(self, other: LatencyHistogram) -> None:
        self._bins.update(other._bins)
        self.count += other.count

    def quantile(self, q: float) -> float | None:
        """Upper edge of the bin holding the q-quantile; None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self._bins):
            seen += self._bins[index]
            if seen >= rank:
                return _upper_edge(index)
        return _upper_edge(max(self._bins))

    def maximum(self) -> float | None:
        return _upper_edge(max(self._bins)) if self._bins else None

    def bins(self) -> dict[int, int]:
        return dict(self._bins)


def merge_histograms(histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
    merged = LatencyHistogram()
    for histogram in histograms:
        merged.merge(histogram)
    return merged


def _upper_edge(index: int) -> float:
    return _SMALLEST * _GROWTH**index
