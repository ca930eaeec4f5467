"""The quarterly report: formats, escaping, integrity, browser and PDF (built on a
synthetic drill and a real plain `chaos run`; the demo test builds one from live runs)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aidrill.cli.main import cli
from aidrill.report import Quarter

from ._runs import synthetic_run
from .conftest import PLAN, copy_shipped_files

TITLE = "<script>alert(1)</script>"
SECRET = "quarterly-secret-value-9041"
QUARTER = str(Quarter.current())


def _plain_journal(root: Path) -> None:
    """A real `chaos run` of an experiment with no aidrill data at all."""
    plain = {
        "title": "Plain chaos experiment",
        "description": "no aidrill extension",
        "method": [
            {
                "type": "probe",
                "name": "cwd",
                "provider": {"type": "python", "module": "os", "func": "getcwd"},
            }
        ],
    }
    (root / "plain.json").write_text(json.dumps(plain))
    chaos = Path(sys.executable).with_name("chaos")
    subprocess.run(
        [
            str(chaos),
            "--no-version-check",
            "run",
            "--journal-path",
            str(root / "reports/runs/plain-journal.json"),
            "plain.json",
        ],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def quarter_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A quarter of one drill (synthetic evidence measured by aidrill's own writer: this
    file tests the report, not measurement) with a hostile title and a secret in its
    configuration, a real plain `chaos run` journal, an unreadable journal, a tabletop
    and findings."""
    root = tmp_path_factory.mktemp("quarter")
    copy_shipped_files(root)
    configuration = {"aidrill_state_dir": ".aidrill", "db_password": SECRET}
    synthetic_run(
        root / "reports" / "runs",
        "hostile",
        time.time() - 120,
        title=TITLE,
        configuration=configuration,
    )
    _plain_journal(root)
    (root / "reports/runs/broken-journal.json").write_text('{"experiment": {"title": "x"},')
    runner = CliRunner()
    cwd = Path.cwd()
    os.chdir(root)
    try:
        made = runner.invoke(cli, ["tabletop", "new", "tabletops/region-loss.yaml"])
        assert made.exit_code == 0, made.output
        run_id = next(p.name for p in (root / "reports/runs").iterdir() if p.is_dir())
        (root / "findings.yaml").write_text(
            yaml.safe_dump(
                {
                    "kind": "findings",
                    "findings": [
                        {
                            "id": "F-1",
                            "title": "Runbook lacks failover approver",
                            "severity": "high",
                            "owner": "sre",
                            "due": "2026-12-31",
                            "opened": "2026-07-01",
                        },
                        {
                            "id": "F-2",
                            "title": "GPU replacement was slow",
                            "severity": "medium",
                            "owner": "ml-platform",
                            "due": "2026-12-31",
                            "opened": "2026-07-02",
                            "retest_run": run_id,
                        },
                    ],
                }
            )
        )
        result = runner.invoke(cli, ["report", "--quarter", QUARTER])
        assert result.exit_code == 0, result.output
    finally:
        os.chdir(cwd)
    yield root / "reports" / QUARTER


def test_all_five_formats_and_a_manifest(quarter_folder: Path) -> None:
    for name in (
        "index.html",
        "report.pdf",
        "results.json",
        "junit.xml",
        "summary.md",
        "manifest.json",
    ):
        assert (quarter_folder / name).stat().st_size > 0, name
    results = json.loads((quarter_folder / "results.json").read_text())
    assert results["schema"] == "aidrill.quarterly-results/1"
    kinds = sorted(run["kind"] for run in results["runs"])
    assert kinds == ["aidrill", "broken", "plain"]
    broken = next(r for r in results["runs"] if r["kind"] == "broken")
    assert "malformed journal" in broken["problem"]
    findings = {f["id"]: f for f in results["findings"]}
    assert findings["F-1"]["status"] == "open", "carried until a passing retest"
    assert findings["F-2"]["status"] == "closed"
    assert any(f["source"].startswith("tabletop") for f in results["findings"])
    cadence = {row["type"]: row for row in results["cadence"]}
    # gpu-node-loss is one of the DR plan's chaos tests (kill GPU nodes).
    assert cadence["tabletop"]["held"] and cadence["chaos"]["held"]


def test_junit_has_a_case_per_component_target_per_run(quarter_folder: Path) -> None:
    junit = (quarter_folder / "junit.xml").read_text()
    suites = ET.fromstring(junit).findall("testsuite")
    runs = [s for s in suites if not s.get("name", "").startswith(("cadence ", "findings "))]
    # The drill: its target, its validity, its record agreeing with its evidence, its
    # outcome; the plain run: validity and outcome; the unreadable journal: one error.
    assert [len(s.findall("testcase")) for s in runs] == [4, 2, 1], junit
    assert 'name="inference RTO target"' in junit and 'name="run is valid"' in junit
    assert "<error" in junit and "malformed journal" in junit
    assert not any(s.find("testcase/failure") is not None for s in runs), "all met, completed"
    # A case per cadence item (a gap fails) and per finding (an open one fails).
    cadence = next(s for s in suites if s.get("name", "").startswith("cadence "))
    assert [c.get("name") for c in cadence.findall("testcase")][:4] == [
        "tabletop", "component", "full-region", "chaos"]  # fmt: skip
    results = json.loads((quarter_folder / "results.json").read_text())
    findings = next(s for s in suites if s.get("name", "").startswith("findings "))
    cases = {c.get("name"): c for c in findings.findall("testcase")}
    assert set(cases) == {f["id"] for f in results["findings"]}
    for finding in results["findings"]:
        failed = cases[finding["id"]].find("failure") is not None
        assert failed == (finding["status"] == "open"), finding["id"]
    assert int(findings.get("failures", "0")) == sum(
        1 for f in results["findings"] if f["status"] == "open"
    )


def test_hostile_title_and_secret_never_appear_raw(quarter_folder: Path) -> None:
    for name in ("index.html", "results.json", "junit.xml", "summary.md"):
        text = (quarter_folder / name).read_text()
        assert TITLE not in text, f"raw title in {name}"
        assert SECRET not in text, f"secret in {name}"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (quarter_folder / "index.html").read_text()
    for file in (quarter_folder / "evidence").rglob("*"):
        if file.is_file():
            assert SECRET not in file.read_text(errors="replace"), file
    pdf = (quarter_folder / "report.pdf").read_bytes()
    assert b"/JavaScript" not in pdf and b"/JS " not in pdf


def test_verify_passes_then_names_any_changed_missing_or_added_file(quarter_folder: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["verify", str(quarter_folder)]).exit_code == 0
    evidence = sorted(p for p in (quarter_folder / "evidence").rglob("*") if p.is_file())
    assert len(evidence) >= 10
    for path in [*evidence, quarter_folder / "index.html"]:
        original = path.read_bytes()
        changed = bytes([original[0] ^ 0x01]) + original[1:]
        path.write_bytes(changed)
        try:
            result = runner.invoke(cli, ["verify", str(quarter_folder)])
            relative = path.relative_to(quarter_folder).as_posix()
            assert result.exit_code == 1, relative
            assert f"changed: {relative}" in result.output
        finally:
            path.write_bytes(original)
    extra = quarter_folder / "evidence" / "extra.txt"
    extra.write_text("x")
    try:
        result = runner.invoke(cli, ["verify", str(quarter_folder)])
        assert result.exit_code == 1 and "added: evidence/extra.txt" in result.output
    finally:
        extra.unlink()
    assert runner.invoke(cli, ["verify", str(quarter_folder)]).exit_code == 0


def test_index_renders_in_chromium_without_errors_or_outside_requests(quarter_folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((quarter_folder / "index.html").as_uri())
            heading = page.locator("h1").first.inner_text()
            charts = page.locator("svg").count()
            page.screenshot(path=str(quarter_folder.parent / "index.png"), full_page=False)
        finally:
            browser.close()
    assert problems == []
    assert [u for u in requests if not u.startswith("file://")] == []
    assert heading == f"Disaster-recovery drill report — {QUARTER}"
    assert charts >= 2, "a run chart and the trend chart"


SECTIONS = [
    "Disaster-recovery drill report",
    "Executive summary",
    "Scope and exclusions",
    "Objectives and RTO/RPO targets",
    "Cadence coverage",
    "Runs",
    "Findings and remediation",
    "Trend against earlier quarters",
    "Sign-off",
    "Evidence appendix",
]


def test_pdf_converts_to_png_pages_and_carries_every_section(
    quarter_folder: Path, tmp_path: Path
) -> None:
    pdf = quarter_folder / "report.pdf"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True, timeout=120
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pages)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    positions = [_heading_position(text, section) for section in SECTIONS]
    assert all(p >= 0 for p in positions), dict(zip(SECTIONS, positions, strict=True))
    assert positions == sorted(positions), "sections appear in the required order"


def _heading_position(text: str, heading: str) -> int:
    """Where a heading stands at the start of a line in the PDF's text, or -1."""
    match = re.search(rf"(?m)^\s*{re.escape(heading)}(\s|$)", text)
    return match.start() if match else -1


def test_report_refuses_a_bad_quarter_and_format(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["report", "--quarter", "2026-Q5", "--plan", str(PLAN)])
    assert bad.exit_code == 2 and "2026-Q4" in bad.output
    fmt = runner.invoke(
        cli,
        [
            "report",
            "--format",
            "docx",
            "--plan",
            str(PLAN),
            "--runs",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert fmt.exit_code == 2 and "unknown format" in fmt.output
    assert re.search(r"choose from html", fmt.output)
