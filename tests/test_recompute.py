"""The report never believes a run's result.json: it measures every run again from its
evidence with the run's own code, uses that, and makes any disagreement a finding in
every format. A run whose result.json is gone is measured from its evidence and said so."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from aidrill.cli.main import cli
from aidrill.report import Quarter

from ._runs import synthetic_run
from .conftest import copy_shipped_files

QUARTER = str(Quarter.current())


@pytest.fixture
def quarter(tmp_path: Path) -> Iterator[Path]:
    copy_shipped_files(tmp_path)
    runs = tmp_path / "reports" / "runs"
    # gpu-node-loss's inference target is 20 s: an outage of 40 s misses it.
    synthetic_run(runs, "missed", time.time() - 600, outage=40.0)
    synthetic_run(runs, "met", time.time() - 300, outage=3.0)
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def _report(root: Path) -> dict[str, str]:
    result = CliRunner().invoke(cli, ["report", "--quarter", QUARTER])
    assert result.exit_code in (0, 1), result.output
    out = root / "reports" / QUARTER
    return {
        name: (out / name).read_text(encoding="utf-8")
        for name in ("results.json", "summary.md", "index.html", "junit.xml")
    }


def _run_dir(root: Path, slug: str) -> Path:
    return next(p for p in (root / "reports" / "runs").iterdir() if p.name.endswith(slug))


def _inference(results: str) -> dict[str, object]:
    document = json.loads(results)
    return next(c for c in document["components"] if c["name"] == "inference")


def test_an_edited_result_is_caught_and_the_evidence_wins(quarter: Path) -> None:
    honest = _report(quarter)
    assert _inference(honest["results.json"])["status"] == "missed"
    path = _run_dir(quarter, "missed") / "result.json"
    result = json.loads(path.read_text())
    for component in result["components"]:
        component["verdict"] = component["rto_verdict"] = "met"
        component["achieved"]["rto_seconds"] = 4.0
        component["achieved"]["recovered"] = True
    path.write_text(json.dumps(result))
    edited = _report(quarter)
    assert _inference(edited["results.json"])["status"] == "missed", "the evidence wins"
    findings = json.loads(edited["results.json"])["findings"]
    flagged = [f for f in findings if f["id"].startswith("REC-")]
    assert len(flagged) == 1 and flagged[0]["severity"] == "high", findings
    assert (
        "result.json says inference verdict met; its evidence says missed" in (flagged[0]["title"])
    )
    assert "result.json changed after the run sealed it" in flagged[0]["title"]
    for name, text in edited.items():
        assert "disagrees with its evidence" in text, f"{name} leaves the disagreement out"
    # The run's own manifest, written when it ended, catches the edit, and so does the
    # quarterly folder (whose manifest sealed the edited copy): by the run's seal.
    runner = CliRunner()
    by_run = runner.invoke(cli, ["verify", str(path.parent)])
    assert by_run.exit_code == 1 and "changed: result.json" in by_run.output, by_run.output
    by_report = runner.invoke(cli, ["verify", str(quarter / "reports" / QUARTER)])
    assert by_report.exit_code == 1, by_report.output
    assert f"run {path.parent.name} changed after it was recorded" in " ".join(
        by_report.output.split()
    )
    manifest = json.loads((quarter / "reports" / QUARTER / "manifest.json").read_text())
    assert {r["run"] for r in manifest["runs"]} == {p.name for p in path.parent.parent.iterdir()}
    assert all(r["manifest_hash"] for r in manifest["runs"]), "each run's seal is chained"
    assert "disagrees with its evidence" not in honest["results.json"]
    assert "disagrees with its evidence" not in honest["junit.xml"]


def _journal(run: Path, status: str = "completed") -> None:
    """The journal chaoslib writes, reduced to what a report reads."""
    (run / "journal.json").write_text(json.dumps({
        "experiment": {"title": "GPU node loss"}, "status": status, "deviated": False,
        "start": "2026-12-01T00:00:00", "run": [], "rollbacks": []}))  # fmt: skip


def test_a_deleted_result_is_measured_from_the_evidence_and_said(quarter: Path) -> None:
    _journal(_run_dir(quarter, "missed"))
    (_run_dir(quarter, "missed") / "result.json").unlink()
    report = _report(quarter)
    assert _inference(report["results.json"])["status"] == "missed", "not 'completed / valid'"
    assert "result.json is missing" in report["results.json"]
    assert "result.json is missing" in report["junit.xml"]


def test_a_run_without_result_or_journal_is_not_measured(quarter: Path) -> None:
    run = _run_dir(quarter, "missed")
    (run / "result.json").unlink()  # and no journal: it never finished
    results = _report(quarter)["results.json"]
    assert _inference(results)["status"] == "met", "only the other, valid run counts"
    assert _inference(results)["runs"] == 1
    assert "the run has no result.json" in results
