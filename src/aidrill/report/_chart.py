"""Inline SVG charts of a run's timeline (matplotlib, text kept as paths: no fonts fetched)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from aidrill.measure import Bucket

if TYPE_CHECKING:
    from aidrill.report._quarterly import TrendPoint

_COLORS = {
    "p50": "#2b8a3e",
    "p95": "#e67700",
    "p99": "#c92a2a",
    "error": "#c92a2a",
    "quality": "#1c7ed6",
    "fault": "#ffe3e3",
    "recovered": "#2b8a3e",
    "recall": "#7048e8",
    "s3": "#495057",
    "replica": "#d6336c",
    "ttft": "#0b7285",
    "itl": "#5f3dc4",
}

LagPoint = tuple[float, float | None, float | None]  # time, S3 backlog, feature replica lag


def timeline_svg(
    buckets: Sequence[Bucket],
    t_fault: float | None,
    window_end: float | None,
    t_recovered: float | None,
    slo_p95: float,
    quality_floor: float,
    search: Sequence[Bucket] = (),
    lag: Sequence[LagPoint] = (),
) -> str:
    """Latency percentiles (and for streamed answers time to first token and
    inter-token latency), error ratio and quality over time, fault window shaded;
    with data tiers, also search recall and a panel of replication lag and of the
    freshness served (the oldest features and index data behind the answers)."""
    if not buckets:
        return ""
    origin = t_fault if t_fault is not None else buckets[0].start
    xs = [b.start + b.width / 2 - origin for b in buckets]
    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["svg.hashsalt"] = "aidrill"
    aged = any(b.max_age is not None for b in (*buckets, *search))
    panels = 3 if lag or aged else 2
    figure, axes = plt.subplots(
        panels, 1, figsize=(9, 5 + 1.8 * (panels - 2)), sharex=True, constrained_layout=True
    )
    latency, ratios = axes[0], axes[1]
    # A bucket whose every request failed has no latency worth drawing (fast failures
    # would read as a fast service): its latency is left out and the bucket is marked.
    failed = [bool(b.requests) and b.failures >= b.requests for b in buckets]
    for name in ("p50", "p95", "p99"):
        values = [
            None if dead else _ms(getattr(b, name)) for b, dead in zip(buckets, failed, strict=True)
        ]
        latency.plot(xs, values, label=name, color=_COLORS[name], linewidth=1.3)
    if any(b.ttft_p95 is not None for b in buckets):  # streamed answers (openai-*)
        for name, label, style in (("ttft", "time to first token p95", "--"),
                                   ("itl", "inter-token latency p95", "-.")):  # fmt: skip
            values = [_ms(getattr(b, f"{name}_p95")) for b in buckets]
            latency.plot(xs, values, label=label, color=_COLORS[name], linewidth=1.1,
                         linestyle=style)  # fmt: skip
    label = "every request failed"
    for x, bucket, dead in zip(xs, buckets, failed, strict=True):
        if dead:
            half = bucket.width / 2
            latency.axvspan(x - half, x + half, color="#495057", alpha=0.25, label=label)
            label = "_nolegend_"
    latency.axhline(
        slo_p95 * 1000, color="#495057", linestyle=":", linewidth=1,
        label=f"SLO p95 ({slo_p95 * 1000:.0f} ms)",
    )  # fmt: skip
    latency.set_ylabel("latency (ms)")
    errors = [(b.failures / b.requests) if b.requests else None for b in buckets]
    quality = [b.quality for b in buckets]
    ratios.plot(xs, errors, label="error ratio", color=_COLORS["error"], linewidth=1.3)
    ratios.plot(xs, quality, label="quality", color=_COLORS["quality"], linewidth=1.3)
    ratios.axhline(
        quality_floor, color="#868e96", linestyle=":", linewidth=1, label="quality floor"
    )
    if search:
        ratios.plot(
            [b.start + b.width / 2 - origin for b in search],
            [b.quality for b in search],
            label="search recall@k",
            color=_COLORS["recall"],
            linewidth=1.1,
        )
    ratios.set_ylim(-0.02, 1.05)
    if lag or aged:
        replication = axes[2]
        at = [t - origin for t, _, _ in lag]
        if lag:
            replication.plot(at, [s for _, s, _ in lag], label="artifact backlog (s)",
                             color=_COLORS["s3"], linewidth=1.2)  # fmt: skip
            replication.plot(at, [r for _, _, r in lag], label="feature replica lag (s)",
                             color=_COLORS["replica"], linewidth=1.2)  # fmt: skip
        if aged:
            replication.plot(xs, [b.max_age for b in buckets], label="feature age served (s)",
                             color=_COLORS["p99"], linewidth=1.0, linestyle="-.")  # fmt: skip
            replication.plot([b.start + b.width / 2 - origin for b in search],
                             [b.max_age for b in search], label="index age served (s)",
                             color=_COLORS["recall"], linewidth=1.0, linestyle="-.")  # fmt: skip
        replication.set_ylabel("lag, freshness (s)")
    axes[-1].set_xlabel("seconds since fault injection (UTC clock)")
    for axis in axes:
        if t_fault is not None:
            end = (window_end if window_end is not None else buckets[-1].end) - origin
            axis.axvspan(0, end, color=_COLORS["fault"], label="fault → rollback")
        if t_recovered is not None:
            axis.axvline(
                t_recovered - origin,
                color=_COLORS["recovered"],
                linestyle="--",
                linewidth=1.5,
                label="recovered",
            )
        axis.grid(alpha=0.3)
        axis.legend(loc="upper right", fontsize=8, ncols=3)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def trend_svg(trend: dict[str, list[TrendPoint]], targets: dict[str, float]) -> str:
    """Worst achieved RTO per component per quarter, each against its target; a quarter
    in which a run never recovered is drawn as an open red marker at the window it was
    watched for, labelled "not recovered" (a lower bound, never a recovery)."""
    plotted = {
        name: points for name, points in trend.items() if any(p.seconds is not None for p in points)
    }
    if not plotted:
        return ""
    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["svg.hashsalt"] = "aidrill"
    figure, axis = plt.subplots(figsize=(9, 3.2), constrained_layout=True)
    missed_label = "not recovered (> window)"
    for index, (name, points) in enumerate(sorted(plotted.items())):
        labels = [p.quarter for p in points]
        values = [float("nan") if p.seconds is None else p.seconds for p in points]
        color = f"C{index}"
        axis.plot(labels, values, marker="o", label=f"{name} worst RTO", color=color)
        axis.axhline(targets[name], color=color, linestyle=":", linewidth=1, label=f"{name} target")
        for point in points:
            if point.recovered is False and point.seconds is not None:
                axis.plot([point.quarter], [point.seconds], marker="^", markersize=11,
                          markerfacecolor="none", markeredgecolor="red", linestyle="none",
                          label=missed_label)  # fmt: skip
                missed_label = "_nolegend_"
    axis.set_ylabel("achieved RTO (s)")
    axis.grid(alpha=0.3)
    # Beside the plot, never over it: a quarter's points sit where a legend would.
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=1)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
