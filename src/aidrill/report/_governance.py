"""Governance around the measurements, and the map to the controls an auditor tests.

Everything here is derived from the report's own data (runs, findings, cadence, the
plan's ``governance`` section): a clause with no evidence in this report reads "not
covered", never a sentence that would be true of any report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from aidrill.experiment import PlannedFault, planned_faults
from aidrill.measure import ParticipantRecord
from aidrill.report._rows import ThirdPartyRow

if TYPE_CHECKING:
    from aidrill.report._quarterly import QuarterlyReport, RunSection

Coverage = Literal["covered", "partly covered", "not covered"]

_MONTHS = {"weekly": 0, "monthly": 1, "quarterly": 3, "half-yearly": 6, "yearly": 12}
_DAYS = {"weekly": 7}


def next_due(cadence: str, last: dt.date | None, quarter_end: dt.date) -> str:
    """When the next exercise of a cadence item is due: the last one held plus the
    cadence; with none held this quarter, by the quarter's end."""
    if last is None:
        return f"overdue: none held; due by {quarter_end - dt.timedelta(days=1)}"
    if cadence in _DAYS:
        return str(last + dt.timedelta(days=_DAYS[cadence]))
    months = _MONTHS.get(cadence)
    if months is None:
        return f"per the plan's cadence ({cadence}) after {last}"
    month = last.month - 1 + months
    year, month = last.year + month // 12, month % 12 + 1
    for day in (last.day, 30, 29, 28):
        try:
            return str(dt.date(year, month, day))
        except ValueError:
            continue
    raise AssertionError("unreachable: day 28 exists in every month")


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    independent: bool
    runs: tuple[str, ...]


@dataclass(frozen=True)
class ControlRow:
    framework: str
    clause: str
    asks: str  # a paraphrase of what the clause asks, to read beside the standard
    coverage: Coverage
    evidence: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)


@dataclass
class Governance:
    people: list[Person]
    runs_with_independent: int
    runs_counted: int
    bia: str | None
    components_without_bia: list[str]
    test_plan: str | None
    third_parties: list[ThirdPartyRow]
    management_review: str | None
    decided_findings: int
    open_findings: int
    controls: list[ControlRow]


def participants_of(section: RunSection) -> list[ParticipantRecord]:
    result = section.record.result
    return list(result.participants) if result is not None else []


def build_governance(report: QuarterlyReport) -> Governance:
    plan = report.plan
    governance = plan.governance
    valid = [s for s in report.runs if s.record.valid and s.record.kind == "aidrill"]
    seen: dict[tuple[str, str, bool], list[str]] = {}
    for section in report.runs:
        for p in participants_of(section):
            key = (p.name, p.role, p.independent)
            seen.setdefault(key, []).append(section.record.run_id)
    people = [Person(n, r, i, tuple(runs)) for (n, r, i), runs in sorted(seen.items())]
    with_independent = sum(1 for s in valid if any(p.independent for p in participants_of(s)))
    approval = governance.test_plan
    review = governance.management_review
    gov = Governance(
        people=people,
        runs_with_independent=with_independent,
        runs_counted=len(valid),
        bia=governance.bia,
        components_without_bia=[c.name for c in plan.components if not c.bia],
        test_plan=(
            f"approved by {approval.by} ({approval.role}) on {approval.at}"
            + (f", {approval.reference}" if approval.reference else "")
            if approval
            else None
        ),
        third_parties=[
            ThirdPartyRow(t.name, t.provides, t.participated, t.how)
            for t in governance.third_parties
        ],
        management_review=(
            f"{review.by} ({review.role}) on {review.at}: {review.decision}" if review else None
        ),
        decided_findings=sum(1 for f in report.findings if f.decided is not None),
        open_findings=len(report.open_findings),
        controls=[],
    )
    gov.controls = _controls(report, gov, valid)
    return gov


def _region_failovers(sections: list[RunSection]) -> list[str]:
    return [
        s.record.run_id
        for s in sections
        if any(
            isinstance(f, PlannedFault) and f.scope.kind == "region"
            for f in planned_faults(s.record.experiment)
        )
    ]


def _row(framework: str, clause: str, asks: str, have: list[str], gaps: list[str]) -> ControlRow:
    coverage: Coverage = "not covered" if not have else "partly covered" if gaps else "covered"
    return ControlRow(framework, clause, asks, coverage, have, gaps)


def _when(condition: object, line: str) -> list[str]:
    return [line] if condition else []


@dataclass
class _Facts:
    """The report's data, each as the sentence of evidence (or of a gap) it makes."""

    tested: list[str]
    untested: list[str]
    objectives: list[str]
    no_bia: list[str]
    cadence: list[str]
    cadence_gaps: list[str]
    findings: list[str]
    undecided: list[str]
    review: list[str]
    no_review: list[str]
    plan: list[str]
    no_plan: list[str]
    independence: list[str]
    no_independence: list[str]


def _facts(report: QuarterlyReport, gov: Governance, valid: list[RunSection]) -> _Facts:
    components = report.components
    drilled = [c for c in components if c.runs]
    undrilled = [c.name for c in components if not c.runs]
    counts = report.counts
    undecided = len(report.findings) - gov.decided_findings
    return _Facts(
        tested=_when(
            valid,
            f"{len(valid)} valid drill(s) measured RTO/RPO from evidence for {len(drilled)} "
            f"of {len(components)} component(s): {counts['met']} met, {counts['missed']} "
            f"missed, {counts['inconclusive']} inconclusive",
        ),
        untested=_when(undrilled, f"never drilled this quarter: {', '.join(undrilled)}"),
        objectives=_when(gov.bia, f"targets from the business-impact analysis {gov.bia}")
        + _when(components, f"{len(components)} component target(s), each with a rationale"),
        no_bia=_when(not gov.bia, "the plan names no business-impact analysis")
        + _when(
            gov.bia and gov.components_without_bia,
            f"no BIA reference for {', '.join(gov.components_without_bia)}",
        ),
        cadence=[
            f"{row.type} ({row.cadence}): last held {row.last_held}, next due {row.next_due}"
            for row in report.cadence
            if row.last_held
        ],
        cadence_gaps=[
            f"no {row.type} exercise ({row.cadence})"
            for row in report.cadence
            if row.gap and row.type != "components exercised"
        ],
        findings=_when(
            report.findings,
            f"{len(report.findings)} finding(s), {gov.decided_findings} with an action the "
            f"team decided and a named owner; {gov.open_findings} open",
        ),
        undecided=_when(undecided, f"{undecided} finding(s) without an action the team decided"),
        review=_when(gov.management_review, f"management review: {gov.management_review}"),
        no_review=_when(not gov.management_review, "no management review recorded in the plan"),
        plan=_when(gov.test_plan, f"test plan {gov.test_plan}"),
        no_plan=_when(not gov.test_plan, "no test-plan approval recorded in the plan"),
        independence=_when(
            gov.runs_with_independent,
            f"{gov.runs_with_independent} of {gov.runs_counted} valid drill(s) had an "
            "independent participant",
        ),
        no_independence=_when(
            gov.runs_with_independent < gov.runs_counted or not gov.runs_counted,
            "drills without an independent participant recorded",
        ),
    )


def _controls(
    report: QuarterlyReport, gov: Governance, valid: list[RunSection]
) -> list[ControlRow]:
    f = _facts(report, gov, valid)
    dr = report.plan.dr_region
    failovers = _region_failovers(valid)
    full_region = [
        s.record.run_id
        for s in valid
        if s.record.test_type == "full-region"
        and not s.deviations
        and all(r.succeeded for r in s.rollbacks)
    ]
    chaos = [s.record.run_id for s in valid if s.record.test_type == "chaos"]
    involved = [t.name for t in gov.third_parties if t.participated]
    absent = [t.name for t in gov.third_parties if not t.participated]
    return [
        _row(
            "SOC 2", "A1.3",
            "recovery plan procedures are tested to support system recovery",
            f.tested, f.untested,
        ),
        _row(
            "ISO 22301:2019", "8.5",
            "an exercise programme: scenario-based exercises against the continuity "
            "objectives, at planned intervals, with post-exercise reports, actions and review",
            f.tested + f.objectives + f.cadence + f.findings + f.review,
            f.untested + f.no_bia + f.cadence_gaps + f.undecided + f.no_review,
        ),
        _row(
            "NIST SP 800-53", "CP-4",
            "test the contingency plan at a defined frequency, review the results, start "
            "corrective actions",
            f.tested + f.findings + f.review,
            f.cadence_gaps + f.undecided + f.no_review,
        ),
        _row(
            "NIST SP 800-53", "CP-4(1)",
            "coordinate plan testing with the plans of related elements",
            [], ["this report holds no evidence of coordination with related plans"],
        ),
        _row(
            "NIST SP 800-53", "CP-4(2)", "test at the alternate processing site",
            _when(failovers, f"failover to the DR region {dr} in {len(failovers)} valid run(s)"),
            [],
        ),
        _row(
            "NIST SP 800-53", "CP-4(3)", "test the contingency plan with automated mechanisms",
            _when(valid, f"{len(valid)} drill(s) run and measured by aidrill from evidence"),
            [],
        ),
        _row(
            "NIST SP 800-53", "CP-4(4)",
            "full recovery and reconstitution to a known state as part of testing",
            _when(
                full_region,
                "full-region drill(s) ended nominal with every rollback done: "
                + ", ".join(full_region),
            ),
            [],
        ),
        _row(
            "NIST SP 800-53", "CP-4(5)", "self-challenge: disrupt and adversely affect the system",
            _when(chaos, f"{len(chaos)} chaos drill(s) injected faults under load"),
            [],
        ),
        _row(
            "DORA (EU) 2022/2554", "Art. 24",
            "a risk-based testing programme, tests by independent parties, critical systems "
            "tested at least yearly",
            f.tested + f.plan + f.independence + f.cadence,
            f.untested + f.no_plan + f.no_independence + f.cadence_gaps,
        ),
        _row(
            "DORA (EU) 2022/2554", "Art. 25",
            "testing of ICT tools and systems: scenario-based, performance and end-to-end tests",
            _when(
                chaos,
                f"{len(chaos)} scenario drill(s) measured latency, errors and answer quality "
                "under load through the fault",
            ),
            f.untested,
        ),
        _row(
            "RTS (EU) 2024/1774", "Art. 25",
            "ICT business-continuity plans tested: severe but plausible scenarios, "
            "switchover to redundant capacity, third-party providers taking part where "
            "relevant",
            _when(failovers, f"switchover to {dr} in {len(failovers)} run(s)")
            + _when(involved, f"third parties taking part: {', '.join(involved)}"),
            _when(not failovers, "no switchover to the DR region drilled")
            + _when(absent, f"third parties that did not take part: {', '.join(absent)}")
            + _when(not gov.third_parties, "the plan names no third-party providers"),
        ),
    ]  # fmt: skip
