"""The embedded lab as a target: the only place outside ``aidrill.lab`` that knows it."""

from __future__ import annotations

import time
from pathlib import Path

from aidrill.lab import LabClient
from aidrill.plan import Plan
from aidrill.targets._target import Heal, wait_for_nothing_off


class LabTarget:
    kind = "lab"

    def __init__(self, state_dir: Path, plan: Plan) -> None:
        self.client = LabClient(state_dir)
        self.plan = plan

    def problems(self) -> list[str]:
        """The lab's own account of what is off (each region's GPU nodes, routing per
        topology, every data tier, the fault ledger), plus any mismatch with the plan."""
        info = self.client.info
        mismatch = []
        if info.primary != self.plan.primary_region or info.dr != self.plan.dr_region:
            mismatch.append(
                f"the lab runs {info.primary} (primary) and {info.dr} (DR); the plan names "
                f"{self.plan.primary_region} and {self.plan.dr_region}"
            )
        return mismatch + self.client.problems()

    def wait_nominal(self) -> list[str]:
        return wait_for_nothing_off(self.problems)

    def heal(self) -> Heal:
        started = time.monotonic()
        before = self.problems()
        cleared = self.client.reset().get("cleared") or []
        after = self.wait_nominal()
        return Heal(before, after, list(cleared), time.monotonic() - started)
