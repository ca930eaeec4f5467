"""The quarterly report's "Configuration posture": for each component, the bound its
configuration implies (from ``aidrill posture``) beside what the quarter's drills
measured; each failed check is a finding carried like the others."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aidrill._documents import read_document
from aidrill.errors import InputError
from aidrill.report._findings import Finding
from aidrill.report._rows import ComponentSummary, PostureRow

DEFAULT_POSTURE = Path("reports/posture/posture.json")


class PostureFileError(InputError):
    """A posture.json that is not one ``aidrill posture`` wrote."""


@dataclass(frozen=True)
class PostureCheck:
    """One check of a posture record, as the report reads it."""

    id: str
    title: str
    why: str
    tier: str
    status: str  # pass, fail, unknown
    rto_not_achievable: bool = False


@dataclass(frozen=True)
class PostureEstimate:
    """One component of a posture record: its tier's bounds and the checks behind them."""

    name: str
    tier: str
    rto: str
    rpo: str
    failed: list[str]
    unknown: list[str]


@dataclass(frozen=True)
class PostureOnFile:
    """The ``posture.json`` an ``aidrill posture`` run wrote, as the report reads it."""

    checked_at: str
    account: str | None
    counts: dict[str, int]
    checks: list[PostureCheck]
    components: list[PostureEstimate]

    @classmethod
    def parse(cls, data: Mapping[str, object], path: Path) -> PostureOnFile:
        checks, components = data.get("checks"), data.get("components")
        if not isinstance(checks, list) or not isinstance(components, list):
            raise PostureFileError("a posture record needs checks and components", file=path)
        counts = data.get("counts")
        account = data.get("account")
        return cls(
            checked_at=str(data.get("checked_at") or ""),
            account=None if account is None else str(account),
            counts={str(k): v for k, v in counts.items() if isinstance(v, int)}
            if isinstance(counts, dict)
            else {},
            checks=[_check(c) for c in checks if isinstance(c, dict)],
            components=[_estimate(c) for c in components if isinstance(c, dict)],
        )


def _texts(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _check(raw: Mapping[str, object]) -> PostureCheck:
    return PostureCheck(
        id=str(raw.get("id")), title=str(raw.get("title")), why=str(raw.get("why")),
        tier=str(raw.get("tier")), status=str(raw.get("status")),
        rto_not_achievable=bool(raw.get("rto_not_achievable")),
    )  # fmt: skip


def _estimate(raw: Mapping[str, object]) -> PostureEstimate:
    bound = raw.get("estimate")
    bound = bound if isinstance(bound, dict) else {}
    return PostureEstimate(
        name=str(raw.get("name")), tier=str(raw.get("tier")),
        rto=str(bound.get("rto", "not checked")), rpo=str(bound.get("rpo", "not checked")),
        failed=_texts(raw.get("failed")), unknown=_texts(raw.get("unknown")),
    )  # fmt: skip


def load_posture(path: Path) -> PostureOnFile | None:
    """The posture record at ``path``; None when there is none."""
    if not path.exists():
        return None
    document = read_document(path, PostureFileError)
    data = document.data
    if not isinstance(data, dict) or data.get("kind") != "aidrill-posture":
        raise PostureFileError("not a posture record written by `aidrill posture`", file=path)
    return PostureOnFile.parse(data, path)


def posture_rows(posture: PostureOnFile, components: list[ComponentSummary]) -> list[PostureRow]:
    """Estimate vs measured, per component of the plan (in the plan's order)."""
    estimates = {c.name: c for c in posture.components}
    rows = []
    for component in components:
        estimate = estimates.get(component.name)
        rows.append(
            PostureRow(
                name=component.name,
                estimated_rto=estimate.rto if estimate else "not checked",
                estimated_rpo=estimate.rpo if estimate else "not checked",
                measured_status=component.status,
                measured_rto=component.worst_rto_text,
                measured_rpo=component.worst_rpo_text
                if component.rpo_target is not None
                else "n/a",
                failed=list(estimate.failed) if estimate else [],
                unknown=list(estimate.unknown) if estimate else [],
            )
        )
    return rows


def posture_findings(posture: PostureOnFile, owners_by_tier: dict[str, str]) -> list[Finding]:
    checked = posture.checked_at
    try:
        opened = dt.datetime.fromisoformat(checked)
    except ValueError:
        opened = dt.datetime.now(dt.UTC)
    components = {c.tier: c.name for c in posture.components}
    findings = []
    for check in posture.checks:
        if check.status != "fail":
            continue
        findings.append(
            Finding(
                id=f"POSTURE-{check.id}",
                title=f"{check.title}: {check.why}",
                severity="high" if check.rto_not_achievable else "medium",
                owner=owners_by_tier.get(check.tier, "unassigned"),
                due=str((opened + dt.timedelta(days=30)).date()),
                opened=str(opened.date()),
                source=f"aidrill posture {checked} (account {posture.account})",
                component=components.get(check.tier),
                status="open",
                retest="closes when `aidrill posture` passes this check",
                retest_plan="fix the configuration and run `aidrill posture` again",
            )
        )
    return findings
