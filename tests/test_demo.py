"""`aidrill demo`, the README's main job, end to end on its own lab: a short suite of two
drills (test_lab_drills.py checks each of them against the lab's truth), their pages,
the index and the quarter's report in all five formats with its manifest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aidrill.report import Quarter, verify_manifest

from ._checklist import checklist, missing_from_formats
from .conftest import DEMO_DRILLS, _lab_processes


def test_demo_runs_the_lab_suite_and_writes_every_report(demo_workspace: Path) -> None:
    output = (demo_workspace / "demo.out").read_text()
    assert output.startswith("exit 0\n"), output
    text = " ".join(output.split())
    assert "quarterly report:" in text
    assert "Suite lab: 2 drill(s)" in text and "drills were invalid" not in text
    # The summary table: each drill's measured RTO against its target.
    assert re.search(r"inference [\d.]+ s / 20 s", text), text
    runs = {p.name.split("-", 1)[1]: p for p in (demo_workspace / "reports/runs").iterdir()}
    assert set(runs) == set(DEMO_DRILLS)
    index = (demo_workspace / "reports/index.html").read_text()
    assert all(f"runs/{p.name}/report.html" in index for p in runs.values())
    quarter = demo_workspace / "reports" / str(Quarter.current())
    for name in ("index.html", "report.pdf", "results.json", "junit.xml", "summary.md"):
        assert (quarter / name).stat().st_size > 0, name
    assert (quarter / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert verify_manifest(quarter).ok
    assert not _lab_processes(demo_workspace / ".aidrill" / "demo"), "the demo stops its lab"


@pytest.mark.reads_the_demo
def test_the_review_checklist_finds_every_item_of_the_demos_report_in_all_five_formats(
    demo_workspace: Path,
) -> None:
    quarter = demo_workspace / "reports" / str(Quarter.current())
    assert checklist(quarter), "the demo's report holds findings at least (cadence gaps)"
    assert missing_from_formats(quarter) == {}
