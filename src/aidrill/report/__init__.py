"""Reports: pages built from evidence files only, never from live systems."""

from aidrill.report._build import write_quarterly_report
from aidrill.report._collect import RunRecord, collect_runs
from aidrill.report._findings import FindingsError, load_findings
from aidrill.report._index import write_index
from aidrill.report._journal import Journal, JournalError, load_journal, looks_like_journal
from aidrill.report._manifest import Verification, verify_manifest, write_manifest
from aidrill.report._quarter import Quarter
from aidrill.report._render import FORMATS
from aidrill.report._run_page import render_run_page, write_run_report
from aidrill.report._tabletop import Tabletop, TabletopError, load_tabletop, write_template

__all__ = [
    "FORMATS",
    "FindingsError",
    "Journal",
    "JournalError",
    "Quarter",
    "RunRecord",
    "Tabletop",
    "TabletopError",
    "Verification",
    "collect_runs",
    "load_findings",
    "load_journal",
    "load_tabletop",
    "looks_like_journal",
    "render_run_page",
    "verify_manifest",
    "write_index",
    "write_manifest",
    "write_quarterly_report",
    "write_run_report",
    "write_template",
]
