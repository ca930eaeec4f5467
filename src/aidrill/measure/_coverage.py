"""Coverage: whether a series holds evidence for every stretch of the window it is judged
over (DESIGN.md "Measurement", coverage).

Missing evidence is never health. A bucket with fewer answers than the series'
``min_answers`` is *unknown*; so is a second with no bucket at all. An unknown stretch
longer than one bucket plus the grace is a *gap*: a verdict that needs the evidence the
gap would have held is *not measured*, and the gap is named ("no load answers from
+12.4 s to the end of the window").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aidrill._durations import format_seconds


@dataclass(frozen=True)
class Gap:
    """An unknown stretch of a series, in UTC epoch seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def describe(self, t_fault: float, window_end: float, what: str) -> str:
        """``no load answers from +12.4 s to the end of the window`` (times from the fault)."""
        until = (
            "the end of the window"
            if self.end >= window_end - 1e-6
            else f"+{format_seconds(self.end - t_fault)}"
        )
        return f"no {what} from {offset_text(self.start - t_fault)} to {until}"


def offset_text(seconds: float) -> str:
    """Seconds from the fault as people read them: ``+12.4 s``, ``-3 s``."""
    return f"{'-' if seconds < 0 else '+'}{format_seconds(abs(seconds))}"


def find_gaps(
    spans: Iterable[tuple[float, float]], start: float, end: float, tolerance: float
) -> list[Gap]:
    """Every stretch of ``[start, end)`` longer than ``tolerance`` that no span covers.

    ``spans`` are the (start, end) of the pieces of evidence that count (known buckets,
    or single samples widened to their bucket)."""
    gaps: list[Gap] = []
    if end <= start:
        return gaps
    cursor = start
    for begin, finish in sorted(spans):
        if finish <= cursor:
            continue
        if begin >= end:
            break
        if begin - cursor > tolerance + 1e-9:
            gaps.append(Gap(cursor, begin))
        cursor = max(cursor, finish)
        if cursor >= end:
            break
    if end - cursor > tolerance + 1e-9:
        gaps.append(Gap(cursor, end))
    return gaps


def record_gaps(
    times: Sequence[float], start: float, end: float, width: float, tolerance: float
) -> list[Gap]:
    """Gaps of a series of timed records (canary writes, probe samples): each record
    vouches for the bucket of ``width`` it falls in."""
    spans = ((t - t % width, t - t % width + width) for t in times)
    return find_gaps(spans, start, end, tolerance)


@dataclass(frozen=True)
class ApparatusStop:
    """A part of the measuring apparatus that stopped or degraded during the run,
    as ``events.jsonl`` recorded it."""

    time: float
    part: str  # "the load generator", "load worker 2", "the feature-store canary writer"
    series: tuple[str, ...]  # the series it fed
    how: str  # "exited with -9", "stopped writing"

    def describe(self, t_fault: float | None) -> str:
        when = "" if t_fault is None else f" at {offset_text(self.time - t_fault)}"
        return f"{self.part} {self.how}{when}"


def explain_gap(
    gap: Gap,
    t_fault: float,
    window_end: float,
    what: str,
    series: str,
    stops: Sequence[ApparatusStop],
    tolerance: float,
) -> str:
    """The gap in words, with the apparatus stop that explains it when one does."""
    text = gap.describe(t_fault, window_end, what)
    cause = cause_of(gap, series, stops, tolerance)
    return f"{text}: {cause.describe(t_fault)}" if cause else text


def cause_of(
    gap: Gap, series: str, stops: Sequence[ApparatusStop], tolerance: float
) -> ApparatusStop | None:
    """The apparatus stop feeding ``series`` recorded before the gap ended (the latest),
    within a tolerance of its start: a stop is noticed only after it happens."""
    fitting = [
        s for s in stops if series in s.series and gap.start - 3 * tolerance <= s.time <= gap.end
    ]
    return max(fitting, key=lambda s: s.time) if fitting else None


def first_disqualifying(gaps: Sequence[Gap], proven_at: float | None) -> Gap | None:
    """The first gap the verdict needs evidence from: any gap, unless a recovery was
    proven (had held for its sustain) by the time the gap began."""
    return next((g for g in gaps if proven_at is None or proven_at > g.start + 1e-9), None)
