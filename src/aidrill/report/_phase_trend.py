"""Where the recovery time went, quarter by quarter: per drill and component, the
recovery phases of each quarter's slowest recovery (issue 28: the trend per phase).

A team that must make a recovery faster next quarter reads which phase grew: the same
drill's detect, provision, load and warm side by side across quarters. Each quarter
shows one real run (its phases add up to its RTO), never an average of phases that
different runs split differently ("provision+load" where one run could not tell them
apart).
"""

from __future__ import annotations

from collections.abc import Sequence

from aidrill.report._collect import RunRecord
from aidrill.report._quarter import Quarter
from aidrill.report._rows import PhaseSlice, PhaseTrendRow, QuarterPhases


def phase_trend(runs: Sequence[RunRecord], until: Quarter) -> list[PhaseTrendRow]:
    """One row per drill (experiment title) and component that recorded phases in a
    valid run up to ``until``; per quarter, its slowest recovery's phases, or none."""
    quarters = sorted(
        {q for q in (Quarter.of(r.started) for r in runs if r.started) if q <= until} | {until}
    )
    slowest: dict[tuple[str, str], dict[Quarter, QuarterPhases]] = {}
    for record in runs:
        if not record.valid or record.started is None:
            continue
        quarter = Quarter.of(record.started)
        if quarter > until:
            continue
        for component in record.components:
            phases, rto = component.achieved.phases, component.achieved.rto_seconds
            if not phases or rto is None:
                continue
            key = (record.title, component.name)
            best = slowest.setdefault(key, {}).get(quarter)
            if best is None or best.rto_seconds is None or rto > best.rto_seconds:
                slowest[key][quarter] = QuarterPhases(
                    quarter=str(quarter),
                    run_id=record.run_id,
                    rto_seconds=float(rto),
                    phases=[PhaseSlice(p.phase, p.seconds) for p in phases],
                )
    return [
        PhaseTrendRow(
            drill=drill,
            component=component,
            quarters=[found.get(q) or QuarterPhases(str(q)) for q in quarters],
        )
        for (drill, component), found in sorted(slowest.items())
    ]


__all__ = ["phase_trend"]
