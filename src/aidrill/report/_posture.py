"""The quarterly report's "Configuration posture": for each component, the bound its
configuration implies (from ``aidrill posture``) beside what the quarter's drills
measured; each failed check is a finding carried like the others."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from aidrill._documents import read_document
from aidrill.errors import InputError
from aidrill.report._findings import Finding

DEFAULT_POSTURE = Path("reports/posture/posture.json")


class PostureFileError(InputError):
    """A posture.json that is not one ``aidrill posture`` wrote."""


def load_posture(path: Path) -> dict[str, Any] | None:
    """The posture record at ``path``; None when there is none."""
    if not path.exists():
        return None
    document = read_document(path, PostureFileError)
    data = document.data
    if not isinstance(data, dict) or data.get("kind") != "aidrill-posture":
        raise PostureFileError("not a posture record written by `aidrill posture`", file=path)
    if not isinstance(data.get("checks"), list) or not isinstance(data.get("components"), list):
        raise PostureFileError("a posture record needs checks and components", file=path)
    return data


def posture_rows(posture: dict[str, Any], components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Estimate vs measured, per component of the plan (in the plan's order)."""
    estimates = {c.get("name"): c for c in posture["components"] if isinstance(c, dict)}
    rows = []
    for component in components:
        estimate = estimates.get(component["name"]) or {}
        bound = estimate.get("estimate") or {}
        rows.append(
            {
                "name": component["name"],
                "estimated_rto": str(bound.get("rto", "not checked")),
                "estimated_rpo": str(bound.get("rpo", "not checked")),
                "measured_status": component["status"],
                "measured_rto": component.get("worst_rto_text", "—"),
                "measured_rpo": component.get("worst_rpo_text", "—")
                if component.get("rpo_target") is not None
                else "n/a",
                "failed": list(estimate.get("failed") or []),
                "unknown": list(estimate.get("unknown") or []),
            }
        )
    return rows


def posture_findings(posture: dict[str, Any], owners_by_tier: dict[str, str]) -> list[Finding]:
    checked = str(posture.get("checked_at", ""))
    try:
        opened = dt.datetime.fromisoformat(checked)
    except ValueError:
        opened = dt.datetime.now(dt.UTC)
    components = {c.get("tier"): c.get("name") for c in posture["components"]}
    findings = []
    for check in posture["checks"]:
        if not isinstance(check, dict) or check.get("status") != "fail":
            continue
        tier = str(check.get("tier"))
        findings.append(
            Finding(
                id=f"POSTURE-{check.get('id')}",
                title=f"{check.get('title')}: {check.get('why')}",
                severity="high" if check.get("rto_not_achievable") else "medium",
                owner=owners_by_tier.get(tier, "unassigned"),
                due=str((opened + dt.timedelta(days=30)).date()),
                opened=str(opened.date()),
                source=f"aidrill posture {checked} (account {posture.get('account')})",
                component=components.get(tier),
                status="open",
                retest="closes when `aidrill posture` passes this check",
                retest_plan="fix the configuration and run `aidrill posture` again",
            )
        )
    return findings
