"""Reports: pages built from evidence files only, never from live systems."""

from aidrill._manifest import (
    Verification,
    runs_changed_since_sealed,
    verify_manifest,
)
from aidrill._signing import (
    SignatureCheck,
    SignoffCheck,
    add_signoff,
    check_signature,
    check_signoffs,
    generate_key_pair,
    read_signoffs,
    sign_manifest,
)
from aidrill.report._build import write_quarterly_report
from aidrill.report._collect import RunRecord, check_runs_path, collect_runs
from aidrill.report._findings import FindingsError, FindingsFile, load_findings
from aidrill.report._index import write_index
from aidrill.report._journal import (
    Journal,
    JournalError,
    journal_from_document,
    load_journal,
    looks_like_journal,
)
from aidrill.report._quarter import Quarter
from aidrill.report._render import FORMATS
from aidrill.report._run_page import render_run_page, write_run_report
from aidrill.report._tabletop import Tabletop, TabletopError, load_tabletop, write_template

__all__ = [
    "FORMATS",
    "FindingsError",
    "FindingsFile",
    "Journal",
    "JournalError",
    "Quarter",
    "RunRecord",
    "SignatureCheck",
    "SignoffCheck",
    "Tabletop",
    "TabletopError",
    "Verification",
    "add_signoff",
    "check_runs_path",
    "check_signature",
    "check_signoffs",
    "collect_runs",
    "generate_key_pair",
    "journal_from_document",
    "load_findings",
    "load_journal",
    "load_tabletop",
    "looks_like_journal",
    "read_signoffs",
    "render_run_page",
    "runs_changed_since_sealed",
    "sign_manifest",
    "verify_manifest",
    "write_index",
    "write_quarterly_report",
    "write_run_report",
    "write_template",
]
