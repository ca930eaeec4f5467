"""Typed evidence records that measurement works on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    correct: float = 0
    scored: int = 0
    regions: dict[str, int] = field(default_factory=dict)
    series: str = "inference"
    # The oldest data an answer of this bucket was built from (seconds): the features
    # behind a prediction, the index data behind a search. None: not reported.
    max_age: float | None = None

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

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Bucket:
        return cls(
            start=float(record["start"]),
            width=float(record["width"]),
            requests=int(record["requests"]),
            failures=int(record["failures"]),
            p50=record.get("p50"),
            p95=record.get("p95"),
            p99=record.get("p99"),
            max=record.get("max"),
            correct=float(record.get("correct", 0)),
            scored=int(record.get("scored", 0)),
            regions={str(k): int(v) for k, v in (record.get("regions") or {}).items()},
            series=str(record.get("series", "inference")),
            max_age=float(record["max_age"]) if record.get("max_age") is not None else None,
        )

    def to_record(self) -> dict[str, Any]:
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
            **({} if self.max_age is None else {"max_age": round(self.max_age, 3)}),
        }


@dataclass(frozen=True)
class Event:
    """Something that happened during a run, with its UTC epoch time."""

    time: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Event:
        data = {k: v for k, v in record.items() if k not in ("time", "kind")}
        return cls(time=float(record["time"]), kind=str(record["kind"]), data=data)

    def to_record(self) -> dict[str, Any]:
        return {"time": self.time, "kind": self.kind, **self.data}
