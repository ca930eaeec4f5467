"""result.json and report.html of a run, computed from its evidence files only."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aidrill import _evidence as evidence
from aidrill._run_result import compute_run_result, result_document

logger = logging.getLogger(__name__)


def write_run_result(
    run_dir: Path, status: str, deviated: bool, abort_reason: str | None = None
) -> None:
    """Measure every component from the run's evidence and write result.json. A record
    its own schema refuses is a bug in aidrill: it is still written (the run's
    measurement is not lost), with a note saying what does not fit."""
    try:
        document = compute_run_result(run_dir, status, deviated, abort_reason).to_json()
    except ValueError as exc:
        logger.error("the run's result does not fit its schema: %s", exc)
        document = result_document(run_dir, status, deviated, abort_reason)
        notes = document.get("notes")
        kept = list(notes) if isinstance(notes, list) else []
        document["notes"] = [*kept, f"result.json does not fit its schema: {exc}"]
    evidence.write_new_file(run_dir / evidence.RESULT_FILE, json.dumps(document, indent=2))


def write_run_page(run_dir: Path) -> None:
    from aidrill.report import write_run_report

    write_run_report(run_dir)
