"""How a relapse after recovery is put into words, the same in every page and format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aidrill._durations import format_seconds


def relapse_text(relapses: Sequence[Mapping[str, Any]]) -> str:
    """``relapsed after recovering: unhealthy again 2 times, 7 s in all (first at +41 s
    from the fault); the RTO counts the first sustained recovery``."""
    total = sum(float(r.get("seconds") or 0.0) for r in relapses)
    first = relapses[0].get("from_fault_seconds") if relapses else None
    at = f" (first at +{format_seconds(float(first))} from the fault)" if first is not None else ""
    times = "once" if len(relapses) == 1 else f"{len(relapses)} times"
    return (
        f"relapsed after recovering: unhealthy again {times}, {format_seconds(total)} in all"
        f"{at}; the RTO counts the first sustained recovery"
    )
