"""Findings: maintained by the team (YAML), generated from missed targets, tabletop gaps
and cadence gaps; an open finding is carried every quarter until a passing retest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aidrill._documents import read_document, validate_as
from aidrill.errors import InputError
from aidrill.measure import ComponentRecord
from aidrill.report._collect import RunRecord
from aidrill.report._tabletop import Tabletop

Severity = Literal["low", "medium", "high", "critical"]


class FindingsError(InputError):
    """A findings file that does not validate."""


class ManualFinding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    title: str = Field(min_length=1)
    severity: Severity
    owner: str = Field(min_length=1)
    due: dt.date
    opened: dt.date
    component: str | None = None
    retest_run: str | None = None
    root_cause: str | None = Field(default=None, alias="root-cause")
    action: str | None = None
    retest_plan: str | None = Field(default=None, alias="retest-plan")


class Decision(BaseModel):
    """The team's decision on a finding aidrill generated (a missed target, an invalid
    run, a cadence gap): what will be done, by whom (a person), by when, and the run
    that retests it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    finding: str = Field(min_length=1)
    action: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    due: dt.date
    decided: dt.date
    retest_run: str | None = None


class FindingsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["findings"]
    findings: list[ManualFinding] = []
    decisions: list[Decision] = []


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    severity: str
    owner: str
    due: str
    opened: str
    source: str
    component: str | None
    status: Literal["open", "closed"]
    retest: str
    root_cause: str = "not yet established by the owner"
    action: str = "not yet decided by the owner"
    retest_plan: str = "rerun the drill after the fix"
    # When the team decided the action (a decision in the findings file, or its own
    # finding written with an action); None: the action shown is aidrill's suggestion.
    decided: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status == "open"


def load_findings(path: Path) -> list[ManualFinding]:
    return list(load_findings_file(path).findings)


def load_findings_file(path: Path) -> FindingsFile:
    if not path.exists():
        return FindingsFile(kind="findings")
    document = read_document(path, FindingsError)
    return validate_as(document, FindingsFile, FindingsError, "a findings file must be a mapping")


def apply_decisions(
    findings: list[Finding], decisions: list[Decision], runs: list[RunRecord]
) -> list[Finding]:
    """Each finding with the team's decision on it, where one names it. A decided retest
    closes the finding only when that run passed; a finding already closed by a later
    passing run stays closed."""
    by_id = {run.run_id: run for run in runs}
    chosen = {d.finding: d for d in decisions}
    decided = []
    for finding in findings:
        decision = chosen.get(finding.id)
        if decision is None:
            decided.append(finding)
            continue
        status, retest = finding.status, finding.retest
        if decision.retest_run and status == "open":
            run = by_id.get(decision.retest_run)
            if run is not None and _passed(run, finding.component):
                status, retest = "closed", f"closed by passing retest {decision.retest_run}"
            else:
                retest = f"retest {decision.retest_run} has not passed" + (
                    "" if run is None or run.valid else " (it was invalid)"
                )
        decided.append(
            replace(
                finding,
                action=decision.action,
                owner=decision.owner,
                due=str(decision.due),
                decided=str(decision.decided),
                status=status,
                retest=retest,
                retest_plan=f"rerun {decision.retest_run}"
                if decision.retest_run
                else finding.retest_plan,
            )
        )
    return decided


def gather_findings(
    runs: list[RunRecord],
    tabletops: list[tuple[Path, Tabletop]],
    manual: list[ManualFinding],
    until: dt.datetime,
    owners: dict[str, str],
) -> list[Finding]:
    """Every finding opened before ``until``, with its status as of ``until``."""
    past = [r for r in runs if r.started is not None and r.started < until]
    findings = [
        _from_missed(run, component, past, owners)
        for run in past
        if run.kind == "aidrill" and run.valid
        for component in run.components
        if component.verdict == "missed"
    ]
    findings += [
        _from_blind(run, component, past, owners)
        for run in past
        if run.kind == "aidrill" and run.valid
        for component in run.components
        if _blind_over(component)
    ]
    findings += [_from_invalid(run, past) for run in past if run.kind != "broken" and not run.valid]
    findings += [_from_deviation(run, past) for run in past if run.valid and _deviated(run)]
    findings += [_from_disagreement(run) for run in past if run.disagreements]
    for path, tabletop in tabletops:
        if tabletop.date >= until.date():
            continue
        for number, gap in enumerate(tabletop.gaps, start=1):
            action = tabletop.actions[number - 1] if number <= len(tabletop.actions) else None
            findings.append(
                Finding(
                    id=f"TT-{path.stem}-{number}",
                    title=gap.description,
                    severity=gap.severity,
                    owner=action.owner if action else tabletop.facilitator,
                    due=str(action.due) if action else "not set",
                    opened=str(tabletop.date),
                    source=f"tabletop {tabletop.title}",
                    component=gap.component,
                    status="open",
                    retest="no retest yet: a tabletop gap closes in the findings file",
                )
            )
    by_id = {run.run_id: run for run in past}
    for item in manual:
        if item.opened >= until.date():
            continue
        retest = by_id.get(item.retest_run) if item.retest_run else None
        passed = retest is not None and _passed(retest, item.component)
        findings.append(
            Finding(
                id=item.id,
                title=item.title,
                severity=item.severity,
                owner=item.owner,
                due=str(item.due),
                opened=str(item.opened),
                source="findings file",
                component=item.component,
                root_cause=item.root_cause or Finding.root_cause,
                action=item.action or Finding.action,
                decided=str(item.opened) if item.action else None,
                retest_plan=item.retest_plan
                or (f"rerun {item.retest_run}" if item.retest_run else Finding.retest_plan),
                status="closed" if passed else "open",
                retest=(
                    f"closed by passing retest {item.retest_run}"
                    if passed
                    else f"retest {item.retest_run} has not passed"
                    + ("" if retest is None or retest.valid else " (it was invalid)")
                    if item.retest_run
                    else "no retest yet"
                ),
            )
        )
    closed_tabletop_ids = {i.id for i in manual if i.retest_run}
    return [f for f in findings if not (f.id.startswith("TT-") and f.id in closed_tabletop_ids)]


def _from_missed(
    run: RunRecord, component: ComponentRecord, past: list[RunRecord], owners: dict[str, str]
) -> Finding:
    name = component.name
    retest = _retest(run, past, lambda later: _component_met(later, name))
    which = "RPO" if component.rpo_verdict == "missed" else "RTO"
    if component.rto_verdict == "missed" and which == "RPO":
        which = "RTO and RPO"
    cause = component.cause
    return Finding(
        id=f"RUN-{run.run_id}-{name}",
        title=f"{name} missed its {which} target in the drill {run.title!r}",
        root_cause=str(cause) if cause else Finding.root_cause,
        retest_plan=f"rerun {run.title!r}; it closes when {name} is measured met in a valid run",
        **_opened_by(run, name, retest, owners),
    )


def _opened_by(
    run: RunRecord, name: str, retest: RunRecord | None, owners: dict[str, str]
) -> dict[str, Any]:
    """What a finding a run opened on component ``name`` says of its origin and status."""
    started = run.started or dt.datetime.min.replace(tzinfo=dt.UTC)
    return {
        "severity": "high",
        "owner": owners.get(name, "unassigned"),
        "due": str((started + dt.timedelta(days=30)).date()),
        "opened": str(started.date()),
        "source": f"run {run.run_id}",
        "component": name,
        "status": "closed" if retest else "open",
        "retest": f"closed by passing retest {retest.run_id}"
        if retest
        else "no passing retest yet",
    }


def _retest(
    run: RunRecord, past: list[RunRecord], passes: Callable[[RunRecord], bool]
) -> RunRecord | None:
    """The first later valid aidrill run of the same drill that ``passes``."""
    started = run.started or dt.datetime.min.replace(tzinfo=dt.UTC)
    return next(
        (
            later
            for later in past
            if later.kind == "aidrill"
            and later.valid
            and later.started
            and later.started > started
            and later.title == run.title
            and passes(later)
        ),
        None,
    )


def _blind_over(component: ComponentRecord) -> bool:
    blind = component.achieved.blind
    return blind is not None and blind.over_limit


def _from_blind(
    run: RunRecord, component: ComponentRecord, past: list[RunRecord], owners: dict[str, str]
) -> Finding:
    """Users served badly for longer than the plan allows before the system's own health
    signals reacted; a later valid run of the same drill within the limit closes it."""
    name = component.name
    summary = component.achieved.blind.summary if component.achieved.blind else None
    retest = _retest(
        run,
        past,
        lambda later: not any(_blind_over(c) for c in later.components if c.name == name),
    )
    return Finding(
        id=f"BLIND-{run.run_id}-{name}",
        title=f"{name} was {summary} in the drill {run.title!r}",
        root_cause="the health checks ask whether the server is up, not whether its answers "
        "are right and fast",
        action=BLIND_REMEDIATION,
        retest_plan=f"rerun {run.title!r}; it closes when the blind time is within the plan's "
        "limit in a valid run",
        **_opened_by(run, name, retest, owners),
    )


# What aidrill asks for when a fault was served blind (the team decides its own action).
BLIND_REMEDIATION = (
    "suggested: check answers, not liveness: a known-answer canary inference per node "
    "each health round (or outlier detection on errors, latency and answer quality) that "
    "takes a failing node out of rotation and replaces it"
)


def _from_invalid(run: RunRecord, past: list[RunRecord]) -> Finding:
    """A drill that did not test what it was meant to is itself a finding; a later valid
    run of the same experiment closes it."""
    started = run.started or dt.datetime.min.replace(tzinfo=dt.UTC)
    retest = next(
        (
            later
            for later in past
            if later.valid
            and later.started
            and later.started > started
            and later.title == run.title
        ),
        None,
    )
    return Finding(
        id=f"INV-{run.run_id}",
        title=f"drill {run.title!r} did not test what it was meant to: "
        + "; ".join(run.invalid_reasons),
        severity="high",
        owner="DR plan owner",
        due=str((started + dt.timedelta(days=14)).date()),
        opened=str(started.date()),
        source=f"run {run.run_id}",
        component=None,
        status="closed" if retest else "open",
        retest=f"closed by valid rerun {retest.run_id}" if retest else "no valid rerun yet",
    )


def _from_disagreement(run: RunRecord) -> Finding:
    """A run whose recorded result is not what its evidence measures: the report uses
    the evidence, and the record itself is a finding (edited, or written by a fault)."""
    started = run.started or dt.datetime.min.replace(tzinfo=dt.UTC)
    return Finding(
        id=f"REC-{run.run_id}",
        title=f"the recorded result of {run.title!r} disagrees with its evidence: "
        + "; ".join(run.disagreements[:6])
        + (f"; and {len(run.disagreements) - 6} more" if len(run.disagreements) > 6 else ""),
        severity="high",
        owner="DR plan owner",
        due=str((started + dt.timedelta(days=14)).date()),
        opened=str(started.date()),
        source=f"run {run.run_id}",
        component=None,
        status="open",
        retest="the report uses what the evidence measures; find out who changed the record",
    )


def _deviated(run: RunRecord) -> bool:
    return bool((run.result and run.result.deviated) or (run.journal and run.journal.deviated))


def _from_deviation(run: RunRecord, past: list[RunRecord]) -> Finding:
    """A steady state that failed after the method is a weakness the drill found, whatever
    the verdicts say; a later valid run of the same experiment that held closes it."""
    started = run.started or dt.datetime.min.replace(tzinfo=dt.UTC)
    retest = next(
        (
            later
            for later in past
            if later.valid
            and later.started
            and later.started > started
            and later.title == run.title
            and not _deviated(later)
        ),
        None,
    )
    deviations = (run.result.deviations if run.result else []) or ["the steady state did not hold"]
    return Finding(
        id=f"DEV-{run.run_id}",
        title=f"steady state did not hold after {run.title!r}: " + "; ".join(deviations),
        severity="medium",
        owner="DR plan owner",
        due=str((started + dt.timedelta(days=30)).date()),
        opened=str(started.date()),
        source=f"run {run.run_id}",
        component=None,
        status="closed" if retest else "open",
        retest=f"closed by rerun {retest.run_id}, which held" if retest else "no rerun that held",
    )


def _component_met(run: RunRecord, name: str) -> bool:
    return any(c.name == name and c.verdict == "met" for c in run.components)


def _passed(run: RunRecord, component: str | None = None) -> bool:
    """A retest passes only when it is valid and measured ``met`` (for ``component``
    when the finding names one; otherwise every measured component, at least one)."""
    if run.kind != "aidrill" or not run.valid:
        return False
    if component is not None:
        return _component_met(run, component)
    verdicts = [c.verdict for c in run.components if c.verdict != "not measured"]
    return bool(verdicts) and all(v == "met" for v in verdicts)
