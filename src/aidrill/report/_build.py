"""``aidrill report``: collect a quarter's evidence, copy it, render, seal with a manifest."""

from __future__ import annotations

import gc
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from aidrill._manifest import FileNote, files_under, hash_files, run_seal, write_manifest
from aidrill.errors import InputError
from aidrill.plan import Plan
from aidrill.report._chart import trend_svg
from aidrill.report._collect import collect_runs, draw_chart
from aidrill.report._evidence_copy import copy_redacted
from aidrill.report._findings import load_findings_file
from aidrill.report._gc import rare_collections
from aidrill.report._posture import DEFAULT_POSTURE, load_posture
from aidrill.report._quarter import Quarter
from aidrill.report._quarterly import QuarterlyReport, RunSection, build_report
from aidrill.report._raster import chart_picture
from aidrill.report._render import FORMATS, WRITERS
from aidrill.report._tabletop import collect_tabletops

Progress = Callable[[str], None]
_PARALLEL_FROM = 16  # below this many runs a process pool costs more than it saves


def write_quarterly_report(
    plan: Plan,
    plan_path: Path,
    quarter: Quarter,
    runs_dir: Path,
    out_dir: Path,
    formats: Sequence[str] = FORMATS,
    tabletops_dir: Path = Path("tabletops"),
    findings_path: Path = Path("findings.yaml"),
    progress: Progress = lambda _: None,
    posture_path: Path = DEFAULT_POSTURE,
) -> QuarterlyReport:
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise InputError(
            f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}", field="--format"
        )
    with rare_collections():
        return _write_quarterly_report(
            plan, plan_path, quarter, runs_dir, out_dir, formats, tabletops_dir,
            findings_path, progress, posture_path,
        )  # fmt: skip


def _write_quarterly_report(
    plan: Plan,
    plan_path: Path,
    quarter: Quarter,
    runs_dir: Path,
    out_dir: Path,
    formats: Sequence[str],
    tabletops_dir: Path,
    findings_path: Path,
    progress: Progress,
    posture_path: Path,
) -> QuarterlyReport:
    progress("reading runs, tabletops and findings")
    runs = collect_runs(runs_dir, chart_p95=plan.slo.p95_latency)
    tabletops = collect_tabletops(tabletops_dir)
    findings_file = load_findings_file(findings_path)
    posture = load_posture(posture_path)
    report = build_report(
        plan,
        quarter,
        runs,
        tabletops,
        list(findings_file.findings),
        posture,
        list(findings_file.decisions),
    )
    _set_aside(out_dir)
    progress(f"copying the evidence of {len(report.runs)} run(s)")
    evidence = out_dir / "evidence"
    notes = _copy_evidence(report, evidence, plan_path, findings_path)
    if posture is not None:
        (evidence / "posture").mkdir()
        for name in ("posture.json", "posture.html"):
            if (posture_path.parent / name).is_file():
                shutil.copy2(posture_path.parent / name, evidence / "posture" / name)
    report.evidence_files, report.evidence_hash = hash_files(
        out_dir, files_under(out_dir, "evidence"), notes=notes
    )
    progress(f"drawing {len(report.runs)} chart(s)")
    for section, chart in zip(report.runs, _charts(report.runs, plan), strict=True):
        section.chart = chart
    if "pdf" in formats:
        printed = report.pictures_in_print
        for section, picture in zip(printed, _pictures([s.chart for s in printed]), strict=True):
            section.print_chart = picture
    report.trend_chart = trend_svg(report.trend, {c.name: c.rto for c in plan.components})
    gc.freeze()  # the measured quarter stays alive to the end: out of the collector's way
    for name in formats:
        progress(f"writing {name}")
        WRITERS[name](report, out_dir)
    progress("sealing the manifest")
    seals = [
        run_seal(section.record.path, section.record.run_id)
        for section in report.runs
        if section.record.path.is_dir()
    ]
    write_manifest(out_dir, notes, runs=seals)
    return report


def _set_aside(out_dir: Path) -> None:
    """An earlier report in the same place is renamed, never overwritten."""
    if out_dir.exists() and any(out_dir.iterdir()):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = out_dir.with_name(f"{out_dir.name}.replaced-{stamp}")
        while target.exists():
            time.sleep(1)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            target = out_dir.with_name(f"{out_dir.name}.replaced-{stamp}")
        out_dir.rename(target)
    out_dir.mkdir(parents=True, exist_ok=True)


def _copy_evidence(
    report: QuarterlyReport, evidence: Path, plan_path: Path, findings_path: Path
) -> dict[str, FileNote]:
    """Copy each run's regular files (never a link's target); a journal or experiment
    holding secrets is copied redacted. Returns manifest notes per copied path."""
    notes: dict[str, FileNote] = {}
    runs = evidence / "runs"
    runs.mkdir(parents=True)
    for section in report.runs:
        record = section.record
        base = record.path if record.path.is_dir() else record.path.parent
        target = runs / record.run_id
        target.mkdir(parents=True, exist_ok=True)
        for source in record.files:
            destination = target / source.relative_to(base)
            destination.parent.mkdir(parents=True, exist_ok=True)
            original = copy_redacted(source, destination)
            if original is not None:
                notes[destination.relative_to(evidence.parent).as_posix()] = FileNote(
                    original_sha256=original
                )
        for relative, link_target in record.links:
            name = (target / relative).relative_to(evidence.parent).as_posix()
            notes[name] = FileNote(link=link_target)
    if report.tabletops:
        (evidence / "tabletops").mkdir()
        for path, _ in report.tabletops:
            shutil.copy2(path, evidence / "tabletops" / path.name)
    shutil.copy2(plan_path, evidence / "plan.yaml")
    if findings_path.exists():
        shutil.copy2(findings_path, evidence / "findings.yaml")
    return notes


def _charts(sections: list[RunSection], plan: Plan) -> list[str]:
    """Charts of every run: drawn already where each run was read, else here."""
    p95 = plan.slo.p95_latency
    return [
        section.record.chart
        if section.record.chart is not None
        else draw_chart(section.record, p95)
        for section in sections
    ]


def _pictures(charts: list[str]) -> list[bytes]:
    """The charts as pictures for print, drawn on every core."""
    if len(charts) < _PARALLEL_FROM:
        return [chart_picture(chart) for chart in charts]
    with ProcessPoolExecutor(min(os.cpu_count() or 1, 4)) as pool:
        return list(pool.map(chart_picture, charts, chunksize=8))
