"""The plan's blast-radius limits, applied to actions resolved against a live target."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from aidrill.plan import Plan
from aidrill.targets._target import Resolved

if TYPE_CHECKING:
    from chaoslib.types import Experiment


def apply_limits(plan: Plan, experiment: Experiment, found: list[Resolved]) -> list[Resolved]:
    """Shares of one region's GPU nodes add up across the method's actions (nodes taken
    by one are not back when the next lands) and stay within the plan's limit unless
    they take the whole region, which only a full-region test may; serving capacity in
    two regions at once needs a declared full outage."""
    limit = plan.blast_radius.max_gpu_node_fraction
    extension = next(
        (e for e in experiment.get("extensions") or [] if isinstance(e, dict)
         and e.get("name") == "aidrill"), {}
    )  # fmt: skip
    full_outage = bool(extension.get("full-outage")) or plan.blast_radius.allow_both_regions
    region_test = extension.get("test-type") == "full-region"
    regions_hit = {r.region for r in found if r.share}
    taken: dict[str | None, float] = {}
    result = []
    for item in found:
        reasons = [item.refused] if item.refused else []
        if item.share is not None and item.share < 1.0:
            taken[item.region] = taken.get(item.region, 0.0) + item.share
            total = taken[item.region]
            if limit < item.share:
                reasons.append(
                    f"{item.share:.0%} of the region's GPU nodes; the plan allows {limit:.0%}"
                )
            elif limit + 1e-9 < total:
                reasons.append(
                    f"with the actions before it, {total:.0%} of {item.region}'s GPU nodes; "
                    f"the plan allows {limit:.0%} in one run"
                )
        elif item.share is not None and item.share >= 1.0 and not region_test:
            reasons.append(
                f"every GPU node of {item.region or 'the region'}; the plan allows "
                f"{limit:.0%} outside a full-region test (test-type: full-region)"
            )
        if item.share and len(regions_hit) > 1 and not full_outage:
            reasons.append("serving capacity in two regions at once (full-outage not declared)")
        result.append(replace(item, refused="; ".join(reasons) or None))
    return result
