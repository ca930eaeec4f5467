"""Compact inline SVG timeline charts for the quarterly report.

matplotlib draws each run page's full chart. A quarterly report may hold hundreds of
runs: at ~0.2 s per matplotlib chart and as much again for WeasyPrint to paint its
hundreds of SVG nodes, 400 runs could not be reported in under a minute. These charts
carry the same series (p50/p95/p99 latency, error ratio, quality, fault window,
recovery) in a few dozen nodes, built directly as SVG text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import escape

from aidrill.measure import Bucket

_WIDTH, _HEIGHT, _PAD = 720.0, 236.0, 46.0
_FONT = 12  # 720 units span the printed page's width: 12 units print at about 8.6 pt
_LEGEND_ROW = 18.0
_BAND = (_HEIGHT - _PAD - _LEGEND_ROW - 22.0) / 2


def timeline_sparkline(
    buckets: Sequence[Bucket],
    t_fault: float | None,
    window_end: float | None,
    t_recovered: float | None,
    slo_p95: float,
) -> str:
    """Latency (p50/p95/p99 against the SLO), error ratio and quality, with time zero at
    the fault, the fault window shaded from injection to the start of the rollbacks,
    and the sustained recovery marked; labelled ticks on both axes."""
    if not buckets:
        return ""
    start, end = buckets[0].start, buckets[-1].end
    span = max(end - start, 1e-9)
    plot_width = _WIDTH - 2 * _PAD
    origin = t_fault if t_fault is not None else start

    def x(t: float) -> float:
        return _PAD + (t - start) / span * plot_width

    top_latency = max([b.p99 or 0.0 for b in buckets] + [slo_p95 * 1.2, 1e-3])
    latency_top = _LEGEND_ROW + 4
    ratio_top = latency_top + _BAND + 12
    bottom = ratio_top + _BAND
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH:.0f} {_HEIGHT:.0f}" '
        f'role="img" font-family="sans-serif" font-size="{_FONT}">'
    ]
    if t_fault is not None:
        right = x(window_end) if window_end is not None else _WIDTH - _PAD
        parts.append(
            f'<rect x="{x(t_fault):.1f}" y="{latency_top:.1f}" width="'
            f'{max(right - x(t_fault), 0):.1f}" height="{bottom - latency_top:.1f}" '
            'fill="#ffe3e3"/>'
        )
    parts += _band_frame(latency_top, "latency (ms)")
    parts += _band_frame(ratio_top, "error ratio · quality")
    parts += _y_ticks(latency_top, [(0.0, "0"), (top_latency * 1000, f"{top_latency * 1000:.0f}")])
    parts += _y_ticks(ratio_top, [(0.0, "0"), (0.5, "0.5"), (1.0, "1")], ceiling=1.0)
    slo_y = latency_top + _BAND * (1 - slo_p95 / top_latency)
    parts.append(
        f'<line x1="{_PAD}" x2="{_WIDTH - _PAD}" y1="{slo_y:.1f}" y2="{slo_y:.1f}" '
        'stroke="#495057" stroke-dasharray="4 3"/>'
        f'<text x="{_WIDTH - _PAD - 4}" y="{slo_y - 3:.1f}" text-anchor="end" fill="#495057">'
        f"SLO p95 {slo_p95 * 1000:.0f} ms</text>"
    )
    # A bucket whose every request failed has no latency worth drawing (fast failures
    # would read as a fast service): it is shaded instead, and the lines break there.
    for first, last in _failed_stretches(buckets):
        parts.append(
            f'<rect x="{x(first):.1f}" y="{latency_top:.1f}" '
            f'width="{max(x(last) - x(first), 0.5):.1f}" height="{_BAND:.1f}" '
            'fill="#adb5bd" fill-opacity="0.45"/>'
        )
    for name, color in (("p50", "#2b8a3e"), ("p95", "#e67700"), ("p99", "#c92a2a")):
        parts.append(
            _polyline(
                buckets, x, _unless_all_failed(_series(name)), latency_top, top_latency, color
            )
        )
    parts.append(
        _polyline(
            buckets,
            x,
            lambda b: b.failures / b.requests if b.requests else None,
            ratio_top,
            1.0,
            "#c92a2a",
        )
    )
    parts.append(_polyline(buckets, x, lambda b: b.quality, ratio_top, 1.0, "#1c7ed6"))
    if t_recovered is not None:
        parts.append(
            f'<line x1="{x(t_recovered):.1f}" x2="{x(t_recovered):.1f}" '
            f'y1="{latency_top}" y2="{bottom}" stroke="#2b8a3e" '
            'stroke-width="1.5" stroke-dasharray="5 3"/>'
        )
    parts += _x_ticks(start, end, origin, x, bottom)
    parts.append(
        f'<text x="{_PAD}" y="{_FONT + 2}">p50 green · p95 orange · p99 red · errors red · '
        "quality blue · pink: fault to rollback · grey: every request failed · dashed "
        "green: recovered</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _x_ticks(
    start: float, end: float, origin: float, x: Callable[[float], float], bottom: float
) -> list[str]:
    """Ticks in seconds (or minutes) from the fault, zero at the fault."""
    span = end - start
    step = next(s for s in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 1e9)
                if span / s <= 6)  # fmt: skip
    unit, scale = ("min", 60.0) if step >= 120 else ("s", 1.0)
    first = -((origin - start) // step) * step
    parts = []
    offset = first
    while origin + offset <= end + 1e-9:
        at = x(origin + offset)
        if _PAD - 1 <= at <= _WIDTH - _PAD + 1:
            label = "0 fault" if offset == 0 else f"{offset / scale:+.0f} {unit}"
            parts.append(
                f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{bottom:.1f}" y2="{bottom + 4:.1f}" '
                'stroke="#495057"/>'
                f'<text x="{at:.1f}" y="{bottom + 6 + _FONT:.1f}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
        offset += step
    return parts


def _y_ticks(top: float, marks: list[tuple[float, str]], ceiling: float | None = None) -> list[str]:
    highest = ceiling if ceiling is not None else max(v for v, _ in marks) or 1.0
    parts = []
    for value, label in marks:
        y = top + _BAND * (1 - value / highest)
        parts.append(
            f'<line x1="{_PAD - 4}" x2="{_PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#495057"/>'
            f'<text x="{_PAD - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>'
        )
    return parts


def _band_frame(top: float, title: str) -> list[str]:
    return [
        f'<rect x="{_PAD}" y="{top:.1f}" width="{_WIDTH - 2 * _PAD:.1f}" '
        f'height="{_BAND:.1f}" fill="none" stroke="#ced4da"/>',
        f'<text x="{_PAD + 4}" y="{top + _FONT:.1f}" fill="#495057">{escape(title)}</text>',
    ]


def _polyline(
    buckets: Sequence[Bucket],
    x: Callable[[float], float],
    value: Callable[[Bucket], float | None],
    top: float,
    ceiling: float,
    color: str,
) -> str:
    """One polyline per stretch of buckets holding a value: nothing is drawn across a
    bucket without one (no quality where nothing was scored). Points in the middle of a
    level run are left out: they draw nothing the run's ends do not."""
    segments: list[list[tuple[str, str]]] = [[]]
    for bucket in buckets:
        v = value(bucket)
        if v is None:
            if segments[-1]:
                segments.append([])
            continue
        y = top + _BAND * (1 - min(max(v / ceiling, 0.0), 1.0))
        segments[-1].append((f"{x(bucket.start + bucket.width / 2):.1f}", f"{y:.1f}"))
    return "".join(
        f'<polyline points="{_level_runs_trimmed(points)}" fill="none" stroke="{color}" '
        'stroke-width="1.2"/>'
        for points in segments
        if points
    )


def _level_runs_trimmed(points: list[tuple[str, str]]) -> str:
    kept = [
        point
        for i, point in enumerate(points)
        if i in (0, len(points) - 1) or not (points[i - 1][1] == point[1] == points[i + 1][1])
    ]
    return " ".join(f"{px},{py}" for px, py in kept)


def _failed_stretches(buckets: Sequence[Bucket]) -> list[tuple[float, float]]:
    """(start, end) of each run of contiguous buckets in which every request failed."""
    stretches: list[tuple[float, float]] = []
    for bucket in buckets:
        if not _all_failed(bucket):
            continue
        if stretches and abs(stretches[-1][1] - bucket.start) <= 0.05 * bucket.width:
            stretches[-1] = (stretches[-1][0], bucket.end)
        else:
            stretches.append((bucket.start, bucket.end))
    return stretches


def _all_failed(bucket: Bucket) -> bool:
    return bool(bucket.requests) and bucket.failures >= bucket.requests


def _unless_all_failed(
    value: Callable[[Bucket], float | None],
) -> Callable[[Bucket], float | None]:
    return lambda bucket: None if _all_failed(bucket) else value(bucket)


def _series(name: str) -> Callable[[Bucket], float | None]:
    def value(bucket: Bucket) -> float | None:
        result = getattr(bucket, name)
        return None if result is None else float(result)

    return value


def downsample(buckets: Sequence[Bucket], points: int = 240) -> list[Bucket]:
    """At most ``points`` buckets, keeping the worst of each group (max latency and
    failures, min quality) so a short outage still shows in a long timeline."""
    if len(buckets) <= points:
        return list(buckets)
    size = -(-len(buckets) // points)
    merged = []
    for start in range(0, len(buckets), size):
        group = buckets[start : start + size]
        worst = max(group, key=_failure_ratio)
        poorest = min(group, key=_quality_or_two)
        merged.append(
            Bucket(
                start=group[0].start,
                width=group[-1].end - group[0].start,
                requests=worst.requests,
                failures=worst.failures,
                p50=_max_of([b.p50 for b in group]),
                p95=_max_of([b.p95 for b in group]),
                p99=_max_of([b.p99 for b in group]),
                max=_max_of([b.max for b in group]),
                correct=poorest.correct,
                scored=poorest.scored,
                series=group[0].series,
                max_age=_max_of([b.max_age for b in group]),
            )
        )
    return merged


def _failure_ratio(bucket: Bucket) -> float:
    return bucket.failures / bucket.requests if bucket.requests else 1.0


def _quality_or_two(bucket: Bucket) -> float:
    quality = bucket.quality
    return 2.0 if quality is None else quality


def _max_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None
