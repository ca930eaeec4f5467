"""What ``aidrill posture`` writes, whatever kind of target read it: one record per
component (the checks of its tier and the bounds they imply) and the files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aidrill import __version__
from aidrill._json import JsonDocument
from aidrill.posture._model import Check, Estimate

POSTURE_JSON = "posture.json"
POSTURE_HTML = "posture.html"


@dataclass(frozen=True)
class ComponentPosture:
    """One component of the plan: its targets, what its tier's checks imply, and which
    of them failed or could not be read."""

    name: str
    tier: str
    rto_target: float  # seconds, as the plan states them
    rpo_target: float | None
    estimate: Estimate
    checks: list[str]
    failed: list[str]
    unknown: list[str]

    def to_json(self) -> JsonDocument:
        return {
            "name": self.name,
            "tier": self.tier,
            "rto_target": self.rto_target,
            "rpo_target": self.rpo_target,
            "estimate": self.estimate.to_json(),
            "checks": self.checks,
            "failed": self.failed,
            "unknown": self.unknown,
        }


@dataclass(frozen=True)
class Posture:
    account: str
    checked_at: str
    plan_system: str
    checks: list[Check]
    components: list[ComponentPosture]

    @property
    def counts(self) -> dict[str, int]:
        counts = {"pass": 0, "fail": 0, "unknown": 0}
        for check in self.checks:
            counts[check.status] += 1
        return counts

    @property
    def exit_code(self) -> int:
        return 1 if self.counts["fail"] else 0

    def to_json(self) -> JsonDocument:
        return {
            "kind": "aidrill-posture",
            "tool": f"aidrill {__version__}",
            "system": self.plan_system,
            "account": self.account,
            "checked_at": self.checked_at,
            "counts": self.counts,
            "components": [c.to_json() for c in self.components],
            "checks": [c.to_json() for c in self.checks],
        }


def write_posture(posture: Posture, out: Path) -> list[Path]:
    from aidrill.posture._html import posture_html

    out.mkdir(parents=True, exist_ok=True)
    data = out / POSTURE_JSON
    data.write_text(json.dumps(posture.to_json(), indent=2, default=str) + "\n")
    page = out / POSTURE_HTML
    page.write_text(posture_html(posture.to_json()))
    return [data, page]
