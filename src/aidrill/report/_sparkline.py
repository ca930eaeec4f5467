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

_WIDTH, _HEIGHT, _PAD = 720.0, 200.0, 34.0
_BAND = (_HEIGHT - 3 * _PAD / 2) / 2


def timeline_sparkline(
    buckets: Sequence[Bucket],
    t_fault: float | None,
    window_end: float | None,
    t_recovered: float | None,
    slo_p95: float,
) -> str:
    if not buckets:
        return ""
    start, end = buckets[0].start, buckets[-1].end
    span = max(end - start, 1e-9)
    plot_width = _WIDTH - 2 * _PAD

    def x(t: float) -> float:
        return _PAD + (t - start) / span * plot_width

    top_latency = max([b.p99 or 0.0 for b in buckets] + [slo_p95 * 1.2, 1e-3])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH:.0f} {_HEIGHT:.0f}" '
        'role="img" font-family="sans-serif" font-size="10">'
    ]
    if t_fault is not None:
        right = x(window_end) if window_end is not None else _WIDTH - _PAD
        parts.append(
            f'<rect x="{x(t_fault):.1f}" y="{_PAD / 2:.1f}" width="'
            f'{max(right - x(t_fault), 0):.1f}" height="{_HEIGHT - 1.5 * _PAD:.1f}" '
            'fill="#ffe3e3"/>'
        )
    latency_top, ratio_top = _PAD / 2, _PAD / 2 + _BAND + _PAD / 2
    parts += _band_frame(latency_top, f"latency (max {top_latency * 1000:.0f} ms)")
    parts += _band_frame(ratio_top, "error ratio / quality (0 to 1)")
    slo_y = latency_top + _BAND * (1 - slo_p95 / top_latency)
    parts.append(
        f'<line x1="{_PAD}" x2="{_WIDTH - _PAD}" y1="{slo_y:.1f}" y2="{slo_y:.1f}" '
        'stroke="#868e96" stroke-dasharray="3 3"/>'
    )
    for name, color in (("p50", "#2b8a3e"), ("p95", "#e67700"), ("p99", "#c92a2a")):
        parts.append(_polyline(buckets, x, _series(name), latency_top, top_latency, color))
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
            f'y1="{_PAD / 2}" y2="{_HEIGHT - _PAD}" stroke="#2b8a3e" '
            'stroke-width="1.5" stroke-dasharray="5 3"/>'
        )
    minutes = span / 60
    parts.append(f'<text x="{_PAD}" y="{_HEIGHT - 8:.0f}">{escape(_label(0))}</text>')
    parts.append(
        f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT - 8:.0f}" text-anchor="end">'
        f"{escape(_label(minutes))}</text>"
    )
    parts.append(
        f'<text x="{_WIDTH / 2:.0f}" y="{_HEIGHT - 8:.0f}" text-anchor="middle">'
        "p50 green · p95 orange · p99 red · errors red · quality blue · "
        "fault window shaded · recovery dashed</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _band_frame(top: float, title: str) -> list[str]:
    return [
        f'<rect x="{_PAD}" y="{top:.1f}" width="{_WIDTH - 2 * _PAD:.1f}" '
        f'height="{_BAND:.1f}" fill="none" stroke="#ced4da"/>',
        f'<text x="{_PAD + 4}" y="{top + 11:.1f}" fill="#495057">{escape(title)}</text>',
    ]


def _polyline(
    buckets: Sequence[Bucket],
    x: Callable[[float], float],
    value: Callable[[Bucket], float | None],
    top: float,
    ceiling: float,
    color: str,
) -> str:
    points = []
    for bucket in buckets:
        v = value(bucket)
        if v is None:
            continue
        y = top + _BAND * (1 - min(max(v / ceiling, 0.0), 1.0))
        points.append(f"{x(bucket.start + bucket.width / 2):.1f},{y:.1f}")
    return (
        f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="1.2"/>'
    )


def _series(name: str) -> Callable[[Bucket], float | None]:
    def value(bucket: Bucket) -> float | None:
        result = getattr(bucket, name)
        return None if result is None else float(result)

    return value


def _label(minutes: float) -> str:
    return f"+{minutes:.0f} min" if minutes >= 1 else f"+{minutes * 60:.0f} s"
