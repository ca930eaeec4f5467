"""The quarterly report's compact charts are honest about outages."""

from __future__ import annotations

import re

from aidrill.measure import Bucket
from aidrill.report._sparkline import timeline_sparkline

T0 = 1_800_000_000.0


def _buckets(pattern: str) -> list[Bucket]:
    """'h' healthy, 'x' every request failed (nothing scored)."""
    return [
        Bucket(T0 + i, 1.0, requests=30, failures=30 if mark == "x" else 0, p50=0.1, p95=0.2,
               p99=0.25, correct=0 if mark == "x" else 29, scored=0 if mark == "x" else 30)
        for i, mark in enumerate(pattern)
    ]  # fmt: skip


def _polylines(svg: str, color: str) -> list[list[tuple[float, float]]]:
    lines = re.findall(rf'<polyline points="([^"]*)" fill="none" stroke="{color}"', svg)
    return [[tuple(map(float, p.split(","))) for p in line.split()] for line in lines]  # type: ignore[misc]


def test_an_outage_breaks_the_lines_and_is_shaded_grey() -> None:
    svg = timeline_sparkline(
        _buckets("h" * 10 + "x" * 5 + "h" * 10), T0 + 10, T0 + 25, T0 + 15, 0.5
    )
    quality = _polylines(svg, "#1c7ed6")
    p95 = _polylines(svg, "#e67700")
    assert len(quality) == 2 and len(p95) == 2, "no line is drawn across the outage"
    outage_from, outage_to = quality[0][-1][0], quality[1][0][0]
    for line in (*quality, *p95):
        assert all(not outage_from < px < outage_to for px, _ in line)
    assert len(re.findall(r'fill="#adb5bd"', svg)) == 1, "one grey stretch: every request failed"
    # Failures are drawn as failures: the error ratio is one line, at 1 through the outage.
    (errors,) = [line for line in _polylines(svg, "#c92a2a") if len(line) > 2]
    levels = sorted({y for _, y in errors})
    assert len(levels) == 2 and sum(1 for _, y in errors if y == levels[0]) == 2


def test_level_stretches_keep_their_ends_only() -> None:
    svg = timeline_sparkline(_buckets("h" * 30), None, None, None, 0.5)
    (quality,) = _polylines(svg, "#1c7ed6")
    assert len(quality) == 2 and quality[0][0] < quality[1][0]
