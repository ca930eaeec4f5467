"""Reports: pages built from evidence files only, never from live systems."""

from pathlib import Path

from aidrill._manifest import (
    Verification,
    generator_record,
    notes_of,
    runs_changed_since_sealed,
    verify_manifest,
    write_manifest,
)
from aidrill._signing import (
    SignatureCheck,
    add_signoff,
    check_signature,
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


def reseal_manifest(folder: Path) -> None:
    """Rewrite a report folder's manifest (after a sign-off was added), keeping its notes
    and its generator record."""
    import json

    previous = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    write_manifest(folder, notes_of(folder), previous.get("generator") or generator_record())


__all__ = [
    "FORMATS",
    "FindingsError",
    "FindingsFile",
    "Journal",
    "JournalError",
    "Quarter",
    "RunRecord",
    "SignatureCheck",
    "Tabletop",
    "TabletopError",
    "Verification",
    "add_signoff",
    "check_runs_path",
    "check_signature",
    "collect_runs",
    "generate_key_pair",
    "journal_from_document",
    "load_findings",
    "load_journal",
    "load_tabletop",
    "looks_like_journal",
    "read_signoffs",
    "render_run_page",
    "reseal_manifest",
    "runs_changed_since_sealed",
    "sign_manifest",
    "verify_manifest",
    "write_index",
    "write_manifest",
    "write_quarterly_report",
    "write_run_report",
    "write_template",
]
