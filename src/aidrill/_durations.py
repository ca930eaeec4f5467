"""Durations as people write them in plans and experiments: ``500ms``, ``10s``, ``5m``, ``1h``."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Return seconds for ``500ms``/``10s``/``5m``/``1h``/``1d`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s or 5m, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return float(match.group(1)) * _SECONDS[match.group(2)]
    raise ValueError(f"expected a duration such as 500ms, 30s, 5m, 1h or 1d, got {value!r}")


def format_duration(seconds: float) -> str:
    """Write seconds back the way a plan would: ``90s`` → ``1m30s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s")
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts)


def format_seconds(seconds: float | None, resolution: float | None = None) -> str:
    """How every report and verdict writes a duration: ``3.7 s``, ``20 s``, ``5 min``,
    ``1 h 30 min``. Below 100 s, as many decimals as ``resolution`` supports (one at
    1 s buckets, two at 100 ms); whole seconds when no resolution is given and the
    value is whole. ``None`` reads as a dash."""
    if seconds is None:
        return "—"
    if seconds == float("inf"):
        return "∞"
    if seconds < 100:
        if resolution is None:
            decimals = 0 if float(seconds).is_integer() else 1
        else:
            decimals = 1 if resolution >= 1 else 2 if resolution >= 0.01 else 3
        return f"{seconds:.{decimals}f} s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    parts.append(f"{secs} s" if secs else "")
    return " ".join(p for p in parts if p)


def format_measured(seconds: float | None, resolution: float) -> str:
    """A measured figure with the resolution it was measured at: ``3.7 s (1 s buckets)``."""
    if seconds is None:
        return "—"
    return f"{format_seconds(seconds, resolution)} ({format_seconds(resolution)} buckets)"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
