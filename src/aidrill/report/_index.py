"""An index page linking every run directory under ``reports/runs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aidrill import _evidence as evidence
from aidrill.report._run_page import _ENV


def _list_runs(reports_dir: Path) -> list[dict[str, Any]]:
    runs = []
    for run_dir in sorted((reports_dir / "runs").glob("*/"), reverse=True):
        try:
            result = json.loads((run_dir / evidence.RESULT_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            result = None
        runs.append(
            {
                "dir": run_dir.name,
                "result": result,
                "has_report": (run_dir / evidence.REPORT_FILE).exists(),
            }
        )
    return runs


def write_index(reports_dir: Path) -> Path:
    path = reports_dir / "index.html"
    html = _ENV.get_template("index.html.j2").render(runs=_list_runs(reports_dir))
    tmp = path.with_name(".index.html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
