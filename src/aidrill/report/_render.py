"""Writing the quarterly report in its five formats."""

from __future__ import annotations

import dataclasses
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from aidrill.measure import ComponentRecord
from aidrill.report import _print
from aidrill.report._quarterly import QuarterlyReport
from aidrill.report._run_page import _ENV

logger = logging.getLogger(__name__)
FORMATS = ("html", "pdf", "json", "junit", "md")
RESULTS_SCHEMA = "aidrill.quarterly-results/1"
# Markdown is not HTML: every dynamic value goes through markdown_text() instead.
_MARKDOWN = Environment(loader=PackageLoader("aidrill.report", "templates"), autoescape=False)
_MARKDOWN.filters.update(_ENV.filters)


def render_html(
    report: QuarterlyReport,
    for_print: bool = False,
    chart_url: Callable[[Any], str] = lambda _: "",
    page_of: Callable[[str], Markup] = lambda _: Markup(""),
) -> str:
    """The quarterly page; in print, ``chart_url`` names each run's chart picture and
    ``page_of`` gives each contents entry its page-number attribute (``_print``)."""
    return _ENV.get_template("quarterly.html.j2").render(
        r=report, for_print=for_print, Markup=Markup, chart_url=chart_url, page_of=page_of
    )


def write_html(report: QuarterlyReport, out: Path) -> Path:
    path = out / "index.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def write_pdf(report: QuarterlyReport, out: Path) -> Path:
    return _print.write_pdf(report, out, render_html)


def results_document(report: QuarterlyReport) -> dict[str, Any]:
    """The machine-readable report; its schema is documented in reports/README.md."""
    return {
        "schema": RESULTS_SCHEMA,
        "report_id": report.report_id,
        "system": report.plan.system,
        "quarter": str(report.quarter),
        "generated_at": report.generated_at,
        "evidence_hash": report.evidence_hash,
        "summary": report.counts,
        "invalid_runs": [s.record.run_id for s in report.invalid_runs],
        "blind_faults": [b.to_json() for b in report.blind_faults],
        "phase_trend": [row.to_json() for row in report.phase_trend],
        "left_out": report.left_out,
        "components": [c.to_json() for c in report.components],
        "cadence": [row.to_json() for row in report.cadence],
        "runs": [
            {
                "run_id": s.record.run_id,
                "kind": s.record.kind,
                "experiment": s.record.title,
                "status": s.record.status,
                "started": s.record.started.isoformat() if s.record.started else None,
                "test_type": s.record.test_type,
                "valid": s.record.valid,
                "invalid_reasons": s.record.invalid_reasons,
                "problem": s.record.problem,
                "components": [c.to_json() for c in s.record.components],
                "rollbacks": [r.to_json() for r in s.rollbacks],
                "deviations": s.deviations,
                "caveats": s.caveats,
            }
            for s in report.runs
        ],
        "tabletops": [
            {"file": p.name, "title": t.title, "date": str(t.date), "gaps": len(t.gaps)}
            for p, t in report.tabletops
        ],
        "findings": [vars(f) for f in report.findings],
        "governance": _governance_document(report),
        "posture": None
        if report.posture is None
        else {
            "checked_at": report.posture.checked_at,
            "account": report.posture.account,
            "counts": dict(report.posture.counts),
            "components": [p.to_json() for p in report.posture_rows],
        },
        "trend": {
            name: [
                {
                    "quarter": p.quarter,
                    "worst_rto_seconds": p.seconds if p.recovered else None,
                    "not_recovered_within_seconds": p.seconds if p.recovered is False else None,
                    "text": p.text,
                }
                for p in points
            ]
            for name, points in report.trend.items()
        },
    }


def _governance_document(report: QuarterlyReport) -> dict[str, Any] | None:
    governance = report.governance
    if governance is None:
        return None
    document = dataclasses.asdict(governance)
    document["controls"] = [dataclasses.asdict(c) for c in governance.controls]
    return document


def write_json(report: QuarterlyReport, out: Path) -> Path:
    path = out / "results.json"
    text = json.dumps(results_document(report), indent=2, default=str)
    # Valid JSON escapes, so no markup survives if the file is ever embedded in a page.
    for raw, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(raw, escaped)
    path.write_text(text, encoding="utf-8")
    return path


def write_junit(report: QuarterlyReport, out: Path) -> Path:
    """One test case per component target per run; a missed target is a failure."""
    suites = ET.Element("testsuites", name=f"aidrill {report.quarter}")
    for section in report.runs:
        record = section.record
        suite = ET.SubElement(suites, "testsuite", name=f"{record.run_id}: {record.title}")
        if record.started is not None:
            suite.set("timestamp", record.started.isoformat(timespec="seconds"))
        failures = skipped = 0
        for component in record.components:
            targets: list[tuple[str, str]] = [("RTO", component.rto_verdict)]
            if component.rpo_verdict:
                targets.append(("RPO", component.rpo_verdict))
            for target, verdict in targets:
                case = ET.SubElement(
                    suite,
                    "testcase",
                    classname=record.run_id,
                    name=f"{component.name} {target} target",
                )
                _case_properties(case, component, target, verdict)
                if verdict == "missed":
                    failures += 1
                    ET.SubElement(
                        case, "failure", message=component.explanation, type="target missed"
                    ).text = component.cause or ""
                elif verdict != "met":
                    skipped += 1
                    ET.SubElement(case, "skipped", message=f"{verdict}: {component.explanation}")
        if record.kind == "broken":
            case = ET.SubElement(suite, "testcase", classname=record.run_id, name="evidence")
            ET.SubElement(case, "error", message=record.problem or "unreadable run")
            failures += 1
        else:
            case = ET.SubElement(suite, "testcase", classname=record.run_id, name="run is valid")
            if not record.valid:
                failures += 1
                ET.SubElement(
                    case, "failure", message="; ".join(record.invalid_reasons), type="invalid run"
                )
            if record.kind == "aidrill":
                case = ET.SubElement(
                    suite, "testcase", classname=record.run_id, name="recorded result agrees"
                )
            if record.kind == "aidrill" and record.disagreements:
                failures += 1
                ET.SubElement(
                    case,
                    "failure",
                    message="the recorded result disagrees with its evidence: "
                    + "; ".join(record.disagreements),
                    type="recorded result",
                )
            case = ET.SubElement(suite, "testcase", classname=record.run_id, name="run outcome")
            trouble = _trouble(record.status, bool(record.result and record.result.deviated) or
                               bool(record.journal and record.journal.deviated))  # fmt: skip
            if trouble:
                failures += 1
                ET.SubElement(case, "failure", message=trouble, type=record.status)
        said = [f"caveat: {c}" for c in section.caveats]
        said += [f"deviation: {d}" for d in section.deviations]
        _close_suite(suite, failures, skipped, said)
    _cadence_suite(suites, report)
    _findings_suite(suites, report)
    path = out / "junit.xml"
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _close_suite(
    suite: ET.Element, failures: int, skipped: int, said: list[str] | None = None
) -> None:
    if said:
        ET.SubElement(suite, "system-out").text = "\n".join(said)
    suite.set("tests", str(sum(1 for child in suite if child.tag == "testcase")))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))


def _cadence_suite(suites: ET.Element, report: QuarterlyReport) -> None:
    """A case per cadence item: held this quarter, or a failure naming the gap."""
    suite = ET.SubElement(suites, "testsuite", name=f"cadence {report.quarter}")
    failures = 0
    for row in report.cadence:
        case = ET.SubElement(suite, "testcase", classname="cadence", name=row.type)
        properties = ET.SubElement(case, "properties")
        for name, value in (("cadence", row.cadence), ("last_held", row.last_held),
                            ("next_due", row.next_due)):  # fmt: skip
            if value:
                ET.SubElement(properties, "property", name=name, value=value)
        if row.gap:
            failures += 1
            ET.SubElement(case, "failure", message=row.note or "gap", type="cadence gap")
    _close_suite(suite, failures, 0)


def _findings_suite(suites: ET.Element, report: QuarterlyReport) -> None:
    """A case per finding: an open one fails, with its owner and due date."""
    suite = ET.SubElement(suites, "testsuite", name=f"findings {report.quarter}")
    failures = 0
    for finding in report.findings:
        case = ET.SubElement(suite, "testcase", classname="findings", name=finding.id)
        properties = ET.SubElement(case, "properties")
        for name in ("title", "severity", "owner", "due", "opened", "status", "source"):
            ET.SubElement(properties, "property", name=name, value=str(getattr(finding, name)))
        if finding.is_open:
            failures += 1
            ET.SubElement(
                case, "failure", message=finding.title, type=f"open {finding.severity} finding"
            ).text = f"action: {finding.action}; retest: {finding.retest}"
    _close_suite(suite, failures, 0)


def _case_properties(case: ET.Element, component: ComponentRecord, target: str,
                     verdict: str) -> None:  # fmt: skip
    """The figures behind a target's case: what was wanted, what was measured, when."""
    key = target.lower()
    achieved = component.achieved
    wanted = component.target.rto_seconds if target == "RTO" else component.target.rpo_seconds
    measured: object = achieved.rto_seconds if target == "RTO" else achieved.rpo_seconds
    if target == "RTO" and measured is None and achieved.recovered is False:
        window = achieved.observation_window_seconds
        measured = f"not recovered within {window} s" if window is not None else "not recovered"
    properties = ET.SubElement(case, "properties")
    for name, value in (
        ("verdict", verdict),
        (f"target_{key}_seconds", wanted),
        (f"achieved_{key}_seconds", measured),
        ("resolution_seconds", achieved.resolution_seconds),
        ("fault_at", achieved.fault_at),
        ("recovered_at", achieved.recovered_at),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=str(value))


def _trouble(status: str, deviated: bool) -> str | None:
    """Why a run's outcome fails a CI gate: anything but a completed run that held."""
    if status in ("failed", "aborted", "interrupted"):
        return f"the run {status}"
    if deviated:
        return "the steady state did not hold after the method (deviated)"
    return None


def write_markdown(report: QuarterlyReport, out: Path) -> Path:
    path = out / "summary.md"
    text = _MARKDOWN.get_template("summary.md.j2").render(r=report, md=markdown_text)
    path.write_text(text, encoding="utf-8")
    return path


def markdown_text(value: Any) -> str:
    """Text safe inside Markdown: no raw HTML, no table breaks."""
    text = str(value)
    # Backslash escapes (CommonMark): the file reads as written ("\\> 30 s") and renders
    # the characters themselves, never HTML or a table break.
    for raw, safe in (("\\", "\\\\"), ("&", "\\&"), ("<", "\\<"), (">", "\\>"), ("|", "\\|"),
                      ("\n", " ")):  # fmt: skip
        text = text.replace(raw, safe)
    return text


WRITERS: dict[str, Callable[[QuarterlyReport, Path], Path]] = {
    "html": write_html,
    "pdf": write_pdf,
    "json": write_json,
    "junit": write_junit,
    "md": write_markdown,
}
