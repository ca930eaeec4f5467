"""Reports: pages built from evidence files only, never from live systems."""

from aidrill.report._index import collect_runs, write_index
from aidrill.report._journal import Journal, JournalError, load_journal, looks_like_journal
from aidrill.report._run_page import render_run_page, write_run_report

__all__ = [
    "Journal",
    "JournalError",
    "collect_runs",
    "load_journal",
    "looks_like_journal",
    "render_run_page",
    "write_index",
    "write_run_report",
]
