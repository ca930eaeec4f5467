"""Building the quarterly report's content from evidence (no I/O beyond reading it)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from aidrill._durations import format_measured, format_seconds
from aidrill._manifest_record import ManifestFile
from aidrill.experiment import (
    PlannedFault,
    describe_fault,
    describe_limits,
    find_aidrill_extension,
    planned_faults,
)
from aidrill.measure import Achieved, ComponentRecord, Episode
from aidrill.plan import Plan
from aidrill.report._collect import RunRecord
from aidrill.report._findings import (
    BLIND_REMEDIATION,
    Decision,
    Finding,
    ManualFinding,
    apply_decisions,
    gather_findings,
)
from aidrill.report._governance import Governance, build_governance, next_due
from aidrill.report._phase_trend import phase_trend
from aidrill.report._posture import PostureOnFile, posture_findings, posture_rows
from aidrill.report._quarter import Quarter
from aidrill.report._relapse import relapse_text
from aidrill.report._rows import (
    BlindFaultRow,
    CadenceRow,
    ComponentSummary,
    DigestRow,
    PhaseTrendRow,
    PostureRow,
    RollbackRow,
    WorstRto,
)
from aidrill.report._tabletop import Tabletop

CADENCE_TYPES = ("tabletop", "component", "full-region", "chaos")
_FREQUENT = {"weekly", "monthly", "quarterly"}


@dataclass
class RunSection:
    record: RunRecord
    scenario: str
    blast_radius: list[str]
    abort_criteria: list[str]
    participants: list[str]
    timeline: list[tuple[str, str | None]]
    deviations: list[str]
    rollbacks: list[RollbackRow]
    caveats: list[str] = field(default_factory=list)
    chart: str = ""
    print_chart: bytes = b""  # the chart as a JPEG for a large quarter's PDF (_raster)

    @property
    def nothing_to_note(self) -> bool:
        """A valid aidrill run that completed, met every target, deviated from nothing,
        rolled back cleanly and carries no caveat: the print layout of a large quarter
        lists such a run on one line (its full section stays in the HTML)."""
        return self.met_everything and not self.caveats

    @property
    def met_everything(self) -> bool:
        """Valid, completed, every target met, no deviation, every rollback succeeded,
        its result.json in agreement with its evidence."""
        record = self.record
        return (
            record.kind == "aidrill"
            and record.valid
            and record.status == "completed"
            and not record.disagreements
            and not self.deviations
            and bool(record.components)
            and all(c.verdict == "met" for c in record.components)
            and all(r.succeeded for r in self.rollbacks)
        )


@dataclass
class QuarterlyReport:
    report_id: str
    quarter: Quarter
    generated_at: str
    plan: Plan
    runs: list[RunSection]
    tabletops: list[tuple[Path, Tabletop]]
    findings: list[Finding]
    components: list[ComponentSummary]
    cadence: list[CadenceRow]
    trend: dict[str, list[TrendPoint]]
    phase_trend: list[PhaseTrendRow] = field(default_factory=list)  # see _phase_trend
    evidence_hash: str = ""
    evidence_files: list[ManifestFile] = field(default_factory=list)
    trend_chart: str = ""
    left_out: list[str] = field(default_factory=list)  # runs of other quarters, by id
    posture: PostureOnFile | None = None  # the latest `aidrill posture` record
    posture_rows: list[PostureRow] = field(default_factory=list)
    governance: Governance | None = None

    # From this many runs up, the PDF prints a full section only for the runs that need
    # reading and lists the others one per line: 400 sections would be 800 pages.
    PRINT_IN_FULL_UP_TO = 60

    @property
    def evidence_digest(self) -> list[DigestRow]:
        """The evidence appendix in print: one row per copied run (its files, their
        bytes, and the SHA-256 of the run's own sealed manifest, which lists each file's
        hash), redacted copies named, other evidence files one row each. manifest.json
        lists every file; ``aidrill verify`` checks them all."""
        rows: list[DigestRow] = []
        runs: dict[str, DigestRow] = {}
        for entry in self.evidence_files:
            parts = entry.path.split("/")
            if len(parts) > 3 and parts[:2] == ["evidence", "runs"]:
                row = runs.get(parts[2])
                if row is None:
                    row = runs[parts[2]] = DigestRow(run=parts[2], files=0)
                    rows.append(row)
                row.files += 1
                row.bytes += entry.size
                if parts[3:] == ["manifest.json"]:
                    row.seal = entry.sha256
                if entry.redacted:
                    row.redacted.append("/".join(parts[3:]))
            else:
                rows.append(DigestRow(path=entry.path, sha256=entry.sha256, bytes=entry.size))
        return rows

    @property
    def listed_in_print(self) -> list[RunSection]:
        """The runs the print layout lists one per line instead of in full."""
        if len(self.runs) <= self.PRINT_IN_FULL_UP_TO:
            return []
        return [s for s in self.runs if s.nothing_to_note]

    @property
    def pictures_in_print(self) -> list[RunSection]:
        """The runs of a large quarter printed in full: their charts go into the PDF as
        pictures drawn from the same SVG (``_raster``), which WeasyPrint embeds as they
        are instead of laying out each label and line of a hundred inline charts."""
        if len(self.runs) <= self.PRINT_IN_FULL_UP_TO:
            return []
        shortened = {id(s) for s in (*self.listed_in_print, *self.brief_in_print)}
        return [s for s in self.runs if id(s) not in shortened and s.chart]

    @property
    def brief_in_print(self) -> list[RunSection]:
        """The runs of a large quarter printed briefly: every target met, with caveats.
        Their figures, caveats and rollbacks are printed; their timeline, chart and the
        experiment's scenario, blast radius and abort criteria are in the HTML."""
        if len(self.runs) <= self.PRINT_IN_FULL_UP_TO:
            return []
        return [s for s in self.runs if s.met_everything and s.caveats]

    @property
    def invalid_runs(self) -> list[RunSection]:
        """Runs that did not test what they were meant to: they count for nothing."""
        return [s for s in self.runs if s.record.kind != "broken" and not s.record.valid]

    @property
    def blind_faults(self) -> list[BlindFaultRow]:
        """Faults your health checks did not see: each valid drill of a blind fault (an
        experiment tagged ``blind-fault``) or whose blind time was over the plan's limit,
        with that time, the limit and the remediation asked for."""
        rows = []
        for section in self.runs:
            record = section.record
            if record.kind != "aidrill" or not record.valid:
                continue
            tags = (record.experiment or {}).get("tags") or []
            for component in record.components:
                blind = component.achieved.blind
                if blind is None:
                    continue
                if "blind-fault" not in tags and not blind.over_limit:
                    continue
                rows.append(BlindFaultRow(
                    run_id=record.run_id,
                    experiment=record.title,
                    component=component.name,
                    measured=blind.measured,
                    seconds=blind.seconds,
                    detected=blind.detected,
                    window_seconds=blind.window_seconds,
                    reaction=blind.reaction,
                    limit_seconds=blind.limit_seconds,
                    over_limit=blind.over_limit,
                    users_hurt=blind.users_hurt,
                    health_said_healthy=blind.health_said_healthy,
                    remediation=BLIND_REMEDIATION if blind.over_limit else None,
                ))  # fmt: skip
        return rows

    @property
    def counts(self) -> dict[str, int]:
        counts = {"met": 0, "missed": 0, "not drilled": 0, "inconclusive": 0}
        for component in self.components:
            counts[component.status] = counts.get(component.status, 0) + 1
        return counts

    @property
    def open_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.is_open]


def build_report(
    plan: Plan,
    quarter: Quarter,
    runs: list[RunRecord],
    tabletops: list[tuple[Path, Tabletop]],
    manual: list[ManualFinding],
    posture: PostureOnFile | None = None,
    decisions: list[Decision] | None = None,
) -> QuarterlyReport:
    in_quarter = [r for r in runs if r.started and quarter.contains(r.started)]
    left_out = [r.run_id for r in runs if not (r.started and quarter.contains(r.started))]
    # Invalid runs are shown, and become findings, but count for no target or cadence.
    valid = [r for r in in_quarter if r.valid]
    tabletops_in = [
        (p, t) for p, t in tabletops if quarter.start.date() <= t.date < quarter.end.date()
    ]
    components = _component_summary(plan, valid)
    cadence = _cadence(plan, valid, tabletops_in, components, quarter)
    owners = {c.name: c.owner or "unassigned" for c in plan.components}
    findings = gather_findings(runs, tabletops, manual, quarter.end, owners)
    now = dt.datetime.now(dt.UTC)
    findings += _cadence_findings(quarter, components, cadence, owners, now.date())
    if posture is not None:
        by_tier: dict[str, str] = {
            c.tier: c.owner or "unassigned" for c in reversed(plan.components)
        }
        findings += posture_findings(posture, by_tier)
    findings = apply_decisions(findings, decisions or [], runs)
    severity = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    findings.sort(key=lambda f: (f.status != "open", severity.get(f.severity, 4), f.id))
    report = QuarterlyReport(
        report_id=f"aidrill-{quarter}-{uuid.uuid4().hex[:8]}",
        quarter=quarter,
        generated_at=now.isoformat(timespec="seconds"),
        plan=plan,
        runs=[_run_section(record, plan) for record in in_quarter],
        tabletops=tabletops_in,
        findings=findings,
        components=components,
        cadence=cadence,
        trend=_trend(plan, [r for r in runs if r.valid], quarter),
        phase_trend=phase_trend(runs, quarter),
        left_out=left_out,
        posture=posture,
        posture_rows=posture_rows(posture, components) if posture is not None else [],
    )
    report.governance = build_governance(report)
    return report


def _component_summary(plan: Plan, runs: list[RunRecord]) -> list[ComponentSummary]:
    """Per component, over the valid runs given: status and the worst case, where a
    run that never recovered is the worst and each episode counts on its own."""
    summary = []
    for component in plan.components:
        measured = [
            c
            for run in runs
            for c in run.components
            if c.name == component.name and c.verdict != "not measured"
        ]
        verdicts: list[str] = [c.verdict for c in measured]
        worst = worst_rto(measured)
        rpos = [c.achieved.rpo_seconds for c in measured]
        lost = [v for v in rpos if v == "lost"]
        rpo_values = [v for v in rpos if isinstance(v, int | float)]
        if not measured:
            status = "not drilled"
        elif "missed" in verdicts:
            status = "missed"
        elif "inconclusive" in verdicts:
            status = "inconclusive"
        else:
            status = "met"
        worst_rpo: float | str | None = "lost" if lost else max(rpo_values) if rpo_values else None
        summary.append(
            ComponentSummary(
                name=component.name,
                tier=component.tier,
                rto_target=component.rto,
                rpo_target=component.rpo,
                rationale=component.rationale,
                bia=component.bia,
                owner=component.owner,
                status=status,
                runs=len(measured),
                worst_rto=worst.worst_rto,
                worst_rto_text=worst.worst_rto_text,
                not_recovered=worst.not_recovered,
                worst_window=worst.worst_window,
                worst_rpo=worst_rpo,
                worst_rpo_text="versions lost"
                if worst_rpo == "lost"
                else format_seconds(float(worst_rpo), 0.1)
                if worst_rpo is not None
                else "—",
                verdicts={v: verdicts.count(v) for v in sorted(set(verdicts))},
            )
        )
    return summary


def worst_rto(measured: Sequence[ComponentRecord]) -> WorstRto:
    """The worst achieved RTO over component records and their judged episodes. A
    record or episode that never recovered is worse than any that did: ``> window``,
    counted in ``not_recovered``. An episode cut short by the next fault (superseded)
    was not judged and counts for nothing."""
    recovered: list[tuple[float, float]] = []  # (rto, resolution)
    windows: list[float] = []
    not_recovered = 0
    for record in measured:
        achieved = record.achieved
        resolution = achieved.resolution_seconds or 1.0
        judged = [e for e in achieved.episodes or [] if not e.superseded_by]
        missed = False
        items: list[Achieved | Episode] = [achieved, *judged]
        for item in items:
            if item.rto_seconds is not None:
                recovered.append((item.rto_seconds, resolution))
            elif item.recovered is False:
                windows.append(item.observation_window_seconds or 0.0)
                missed = True
        not_recovered += missed
    if windows:
        text = f"> {format_seconds(max(windows), 1)}, not recovered"
        return WorstRto(None, text, not_recovered, max(windows))
    if not recovered:
        return WorstRto(None, "—", not_recovered, None)
    seconds, resolution = max(recovered)
    return WorstRto(seconds, format_measured(seconds, resolution), not_recovered, None)


def _cadence(
    plan: Plan,
    runs: list[RunRecord],
    tabletops: list[tuple[Path, Tabletop]],
    components: list[ComponentSummary],
    quarter: Quarter,
) -> list[CadenceRow]:
    wanted = {
        "tabletop": plan.cadence.tabletop,
        "component": plan.cadence.component,
        "full-region": plan.cadence.full_region,
        "chaos": plan.cadence.chaos,
    }
    rows = []
    for kind in CADENCE_TYPES:
        held = (
            [t.title for _, t in tabletops]
            if kind == "tabletop"
            else [r.run_id for r in runs if r.test_type == kind]
        )
        due = wanted[kind] in _FREQUENT
        dates = (
            [t.date for _, t in tabletops]
            if kind == "tabletop"
            else [r.started.date() for r in runs if r.test_type == kind and r.started]
        )
        rows.append(
            CadenceRow(
                type=kind,
                cadence=wanted[kind],
                held=held,
                last_held=str(max(dates)) if dates else None,
                next_due=next_due(wanted[kind], max(dates) if dates else None, quarter.end.date()),
                gap=due and not held,
                note=""
                if held
                else (
                    "due every quarter: GAP"
                    if due
                    else f"due {wanted[kind]}; not held this quarter"
                ),
            )
        )
    rows.append(
        CadenceRow(
            type="components exercised",
            cadence="every component",
            held=[c.name for c in components if c.runs],
            gap=any(not c.runs for c in components),
            note=", ".join(f"{c.name} never drilled" for c in components if not c.runs),
        )
    )
    return rows


def _cadence_findings(
    quarter: Quarter,
    components: list[ComponentSummary],
    cadence: list[CadenceRow],
    owners: dict[str, str],
    today: dt.date,
) -> list[Finding]:
    # A gap is found when the report is written: never dated after it.
    opened = str(min(today, quarter.end.date() - dt.timedelta(days=1)))
    missing_types = [
        Finding(
            id=f"CAD-{quarter}-{row.type}",
            title=f"no {row.type} exercise in {quarter} (due {row.cadence})",
            severity="medium",
            owner="DR plan owner",
            due=str(quarter.end.date()),
            opened=opened,
            source="cadence coverage",
            component=None,
            status="open",
            retest=f"closes when a {row.type} exercise is held",
            root_cause="the exercise was not scheduled or not held this quarter",
            action=f"schedule a {row.type} exercise before {quarter.end.date()}",
            retest_plan=f"hold a {row.type} exercise and regenerate this report",
        )
        for row in cadence
        if row.gap and row.type in CADENCE_TYPES
    ]
    return missing_types + [
        Finding(
            id=f"CAD-{quarter}-{c.name}",
            title=f"{c.name} was never drilled in {quarter}",
            severity="high",
            owner=owners.get(c.name, "unassigned"),
            due=str(quarter.end.date()),
            opened=opened,
            source="cadence coverage",
            component=c.name,
            status="open",
            retest="closes when a drill measures this component",
            root_cause="no drill this quarter measured this component",
            action=f"add a drill that names {c.name} among its components",
            retest_plan=f"run a drill measuring {c.name} and regenerate this report",
        )
        for c in components
        if not c.runs
    ]


def _run_section(record: RunRecord, plan: Plan) -> RunSection:
    experiment = record.experiment
    found = find_aidrill_extension(experiment) if experiment else None
    extension = found[1] if found else {}
    faults = [f for f in planned_faults(experiment) if isinstance(f, PlannedFault)]
    blast = [describe_fault(f, plan) for f in faults]
    if record.kind == "plain":
        blast = [
            f"{a.get('name')}: {_provider(a.get('provider'))} (scope not declared)"
            for a in experiment.get("method") or []
            if isinstance(a, dict) and a.get("type") == "action"
        ]
    if record.kind == "aidrill":
        blast.append(describe_limits(plan, bool(extension.get("full-outage"))))
    guard = extension.get("guardrails") or plan.guardrails.model_dump(by_alias=True)
    limits = {k: v for k, v in guard.items() if k != "for" and v is not None}
    criteria = [f"{k.replace('_', ' ')}: {v}" for k, v in limits.items()]
    if limits:
        criteria.append(f"sustained for {guard.get('for', '10s')}")
    else:
        criteria.append("no error-ratio or latency guardrail set")
    criteria.append(f"maximum duration: {extension.get('max-duration', 'none set')}")
    people = [p.model_dump() for p in record.result.participants] if record.result else []
    people = people or extension.get("participants") or []
    participants = [
        f"{p.get('name')} ({p.get('role')}{', independent' if p.get('independent') else ''})"
        if isinstance(p, dict)
        else str(p)
        for p in people
    ] or ["not recorded in the experiment"]
    return RunSection(
        record=record,
        scenario=str(experiment.get("description") or record.title),
        blast_radius=blast or ["no fault action declared"],
        abort_criteria=criteria,
        participants=participants,
        timeline=_instants(record),
        deviations=_deviations(record),
        caveats=run_caveats(record),
        rollbacks=[RollbackRow.of(r.activity, r.status, r.error) for r in record.result.rollbacks]
        if record.result
        else [
            RollbackRow.of((r.activity or {}).get("name"), r.status)
            for r in (record.journal.rollbacks if record.journal else [])
        ],
    )


def run_caveats(record: RunRecord) -> list[str]:
    """What a verdict does not say by itself and a reader must not miss: data served
    staler than the RPO while the target was met, a relapse after the recovery the RTO
    counts, a fault not borne gracefully. Every
    format prints these same sentences."""
    found = []
    for c in record.components:
        achieved = c.achieved
        rpo = c.target.rpo_seconds
        worst = achieved.worst_freshness_seconds
        if achieved.freshness_within_rpo is False and worst is not None:
            beyond = f"its {format_seconds(rpo)} RPO" if rpo is not None else "the RPO"
            found.append(
                f"{c.name}: freshness served {format_seconds(worst)} old during "
                f"the fault, beyond {beyond}"
            )
        if achieved.relapses:
            relapses = [r.model_dump(by_alias=True) for r in achieved.relapses]
            found.append(f"{c.name}: {relapse_text(relapses)}")
        if c.degradation is not None and c.degradation.status == "not graceful":
            found.append(f"{c.name}: not graceful during the fault, {c.degradation.reason}")
    return found


def _provider(provider: Any) -> str:
    if not isinstance(provider, dict):
        return "no provider"
    kind = provider.get("type", "?")
    if kind == "python":
        return f"python {provider.get('module')}.{provider.get('func')}"
    if kind == "process":
        return f"process {provider.get('path')}"
    if kind == "http":
        return f"http {provider.get('method', 'GET')} {provider.get('url')}"
    return str(kind)


def _instants(record: RunRecord) -> list[tuple[str, str | None]]:
    result = record.result
    inference = next((c for c in record.components if c.achieved.recovered is not None), None)
    achieved = inference.achieved if inference is not None else Achieved()
    if record.kind != "aidrill" or result is None:
        journal = record.journal
        return [
            ("start", journal.start if journal else None),
            ("end", journal.end if journal else None),
        ]
    return [
        ("inject", result.fault_injected),
        ("detect (first unhealthy bucket)", achieved.first_unhealthy),
        ("first success", achieved.first_success),
        ("sustained recovery", achieved.recovered_at),
        ("end of observation", result.observation_end),
        ("end", result.ended),
    ]


def _deviations(record: RunRecord) -> list[str]:
    notes = []
    if record.problem:
        notes.append(record.problem)
    notes += [f"invalid: {reason}" for reason in record.invalid_reasons]
    result = record.result
    if result is not None and result.deviations:
        notes += [f"deviated: {d}" for d in result.deviations]
    elif (result is not None and result.deviated) or (record.journal and record.journal.deviated):
        notes.append("deviated: the steady-state hypothesis did not hold after the method")
    if result is not None and result.status == "aborted":
        notes.append(f"aborted: {result.abort_reason or 'reason not recorded'}")
    if record.kind == "plain" and record.status in ("interrupted", "aborted", "failed"):
        notes.append(f"the run {record.status}" if record.status != "failed" else "the run failed")
    for interruption in result.interruptions if result is not None else []:
        notes.append(
            f"interrupted by {interruption.signal} at {interruption.time}"
            + (f": {interruption.reason}" if interruption.reason else "")
        )
    if record.journal:
        failed = [r.activity.get("name") for r in record.journal.run if r.status == "failed"]
        notes += [f"activity {name} failed" for name in failed]
    return notes


class TrendPoint(NamedTuple):
    """A component's worst case in one quarter: the worst recovered RTO, or, where a
    run did not recover, the longest window it was watched without recovering."""

    quarter: str
    seconds: float | None
    recovered: bool | None  # False: a run never recovered; None: nothing measured
    text: str


def _trend(plan: Plan, runs: list[RunRecord], until: Quarter) -> dict[str, list[TrendPoint]]:
    """Per component and quarter, the same worst case as the headline table: every
    valid run counts, one that did not recover as such."""
    quarters = sorted({Quarter.of(r.started) for r in runs if r.started} | {until})
    quarters = [q for q in quarters if q <= until]
    trend: dict[str, list[TrendPoint]] = {}
    for component in plan.components:
        points = []
        for quarter in quarters:
            measured = [
                c
                for r in runs
                if r.started and quarter.contains(r.started)
                for c in r.components
                if c.name == component.name and c.verdict != "not measured"
            ]
            worst = worst_rto(measured)
            if worst.worst_window is not None:
                point = TrendPoint(str(quarter), worst.worst_window, False, worst.worst_rto_text)
            elif worst.worst_rto is not None:
                point = TrendPoint(str(quarter), worst.worst_rto, True, worst.worst_rto_text)
            else:
                point = TrendPoint(str(quarter), None, None, "—")
            points.append(point)
        trend[component.name] = points
    return trend


__all__ = ["QuarterlyReport", "RunSection", "build_report"]
