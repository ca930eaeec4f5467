"""result.json and report.html of a run, computed from its evidence files only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aidrill import _evidence as evidence
from aidrill._run_result import compute_run_result


def write_run_result(
    run_dir: Path, status: str, deviated: bool, abort_reason: str | None = None
) -> dict[str, Any]:
    """Measure every component from the run's evidence and write result.json."""
    result = compute_run_result(run_dir, status, deviated, abort_reason)
    evidence.write_new_file(run_dir / evidence.RESULT_FILE, json.dumps(result, indent=2))
    return result


def write_run_page(run_dir: Path) -> None:
    from aidrill.report import write_run_report

    write_run_report(run_dir)
