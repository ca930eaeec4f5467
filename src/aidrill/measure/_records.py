"""Typed evidence records that measurement works on."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from aidrill._json import JsonOut
from aidrill.measure._line import Line, counts, maybe_number, number, whole

_Record = TypeVar("_Record")


def parse_records(parse: Callable[[Line], _Record], lines: Iterable[Line]) -> list[_Record]:
    """An evidence log's lines through ``parse`` (a record's ``from_record``); a line
    it refuses (KeyError, TypeError, ValueError: not such a record) is left out."""
    records = []
    for line in lines:
        try:
            records.append(parse(line))
        except (KeyError, TypeError, ValueError):
            continue
    return records


@dataclass(frozen=True)
class Bucket:
    """One time bucket of user-visible load results."""

    start: float
    width: float
    requests: int
    failures: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    correct: float = 0.0
    scored: int = 0
    regions: dict[str, int] = field(default_factory=dict)
    series: str = "inference"
    # Answers per serving node, where the server names it (a response header): who
    # served users, second by second (a replacement's first answers end the load phase).
    nodes: dict[str, int] = field(default_factory=dict)
    # The oldest data an answer of this bucket was built from (seconds): the features
    # behind a prediction, the index data behind a search. None: not reported.
    max_age: float | None = None
    # Streamed answers (an openai-* protocol with stream: true): the 95th percentiles of
    # time to first token and of inter-token latency, and each answer's output tokens
    # after its first over the seconds from its first token to its last, summed over
    # the bucket (their ratio is the decode rate users read at).
    ttft_p95: float | None = None
    itl_p95: float | None = None
    tokens: int = 0
    token_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float | None:
        return self.tokens / self.token_seconds if self.token_seconds > 0 else None

    @property
    def end(self) -> float:
        return self.start + self.width

    @property
    def success_ratio(self) -> float | None:
        return (self.requests - self.failures) / self.requests if self.requests else None

    @property
    def quality(self) -> float | None:
        return self.correct / self.scored if self.scored else None

    @property
    def serving_region(self) -> str | None:
        return max(self.regions, key=lambda r: self.regions[r]) if self.regions else None

    def merged(self, late: Bucket) -> Bucket:
        """This bucket with ``late`` (the same series and start, written after it: answers
        the load generator counted after the bucket had closed). Counts add up exactly;
        each latency quantile is an upper bound of the union's (see ``_union_quantile``)."""
        parts = (self, late)
        regions, nodes = dict(self.regions), dict(self.nodes)
        for region, count in late.regions.items():
            regions[region] = regions.get(region, 0) + count
        for node, count in late.nodes.items():
            nodes[node] = nodes.get(node, 0) + count
        ages = [b.max_age for b in parts if b.max_age is not None]
        ttfts = [b.ttft_p95 for b in parts if b.ttft_p95 is not None]
        itls = [b.itl_p95 for b in parts if b.itl_p95 is not None]
        return Bucket(
            start=self.start,
            width=self.width,
            requests=self.requests + late.requests,
            failures=self.failures + late.failures,
            p50=_union_quantile(parts, 0.50),
            p95=_union_quantile(parts, 0.95),
            p99=_union_quantile(parts, 0.99),
            max=_union_quantile(parts, 1.0),
            correct=self.correct + late.correct,
            scored=self.scored + late.scored,
            regions=regions,
            series=self.series,
            nodes=nodes,
            max_age=max(ages) if ages else None,
            ttft_p95=max(ttfts) if ttfts else None,
            itl_p95=max(itls) if itls else None,
            tokens=self.tokens + late.tokens,
            token_seconds=self.token_seconds + late.token_seconds,
        )

    @classmethod
    def from_record(cls, record: Line) -> Bucket:
        # A report reads hundreds of thousands of these: the fields are set in one step
        # instead of through the frozen dataclass's guarded assignment per field (the
        # same values and conversions, the instance as frozen afterwards).
        bucket = object.__new__(cls)
        get = record.get
        bucket.__dict__.update(
            start=number(record["start"]),
            width=number(record["width"]),
            requests=whole(record["requests"]),
            failures=whole(record["failures"]),
            p50=maybe_number(get("p50")),
            p95=maybe_number(get("p95")),
            p99=maybe_number(get("p99")),
            max=maybe_number(get("max")),
            correct=number(get("correct", 0)),
            scored=whole(get("scored", 0)),
            regions=counts(get("regions")),
            series=str(get("series", "inference")),
            nodes=counts(get("nodes")),
            max_age=maybe_number(get("max_age")),
            ttft_p95=maybe_number(get("ttft_p95")),
            itl_p95=maybe_number(get("itl_p95")),
            tokens=whole(get("tokens", 0)),
            token_seconds=number(get("token_seconds", 0.0)),
        )
        return bucket

    def to_record(self) -> dict[str, JsonOut]:
        return {
            "start": round(self.start, 3),
            "width": self.width,
            "requests": self.requests,
            "failures": self.failures,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
            "correct": round(self.correct, 4),
            "scored": self.scored,
            "regions": self.regions,
            **({} if self.series == "inference" else {"series": self.series}),
            **({"nodes": self.nodes} if self.nodes else {}),
            **({} if self.max_age is None else {"max_age": round(self.max_age, 3)}),
            **({} if self.ttft_p95 is None else {"ttft_p95": self.ttft_p95}),
            **({} if self.itl_p95 is None else {"itl_p95": self.itl_p95}),
            **(
                {}
                if not self.token_seconds
                else {"tokens": self.tokens, "token_seconds": round(self.token_seconds, 4)}
            ),
        }


@dataclass(frozen=True)
class Event:
    """Something that happened during a run, with its UTC epoch time."""

    time: float
    kind: str
    data: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Line) -> Event:
        data = {k: v for k, v in record.items() if k not in ("time", "kind")}
        return cls(time=number(record["time"]), kind=str(record["kind"]), data=data)

    def to_record(self) -> dict[str, object]:
        return {"time": self.time, "kind": self.kind, **self.data}


def _levels(bucket: Bucket) -> list[tuple[float, float]]:
    """(value, level) pairs a bucket kept: at least ``level`` of its answers took
    ``value`` seconds or less."""
    pairs = ((bucket.p50, 0.50), (bucket.p95, 0.95), (bucket.p99, 0.99), (bucket.max, 1.0))
    return [(value, level) for value, level in pairs if value is not None]


def _union_quantile(parts: tuple[Bucket, ...], q: float) -> float | None:
    """An upper bound of the ``q`` quantile of the parts' answers taken together: the
    smallest value the parts kept at or below which their own levels guarantee ``q`` of
    all the answers (a part's p95 has at least 95% of its answers at or below it)."""
    total = sum(b.requests for b in parts)
    candidates = sorted({value for b in parts if b.requests for value, _ in _levels(b)})
    for candidate in candidates:
        guaranteed = sum(
            b.requests * max((lv for v, lv in _levels(b) if v <= candidate), default=0.0)
            for b in parts
        )
        if guaranteed >= q * total - 1e-9:
            return candidate
    return None
