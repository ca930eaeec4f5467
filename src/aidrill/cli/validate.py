"""``aidrill validate FILE...``: plans, experiments, probe sets and golden sets, told
from content."""

from __future__ import annotations

from pathlib import Path

import click

from aidrill._documents import Document, read_document, validate_as
from aidrill.cli._common import console, errors
from aidrill.errors import InputError, ProbeSetError, RefusedError
from aidrill.experiment import experiment_from_document
from aidrill.load.golden import golden_set_problems
from aidrill.plan import Plan, load_plan, plan_from_document
from aidrill.probes import ProbeSet
from aidrill.report import (
    FindingsError,
    FindingsFile,
    Tabletop,
    TabletopError,
    journal_from_document,
    looks_like_journal,
)

_NOT_A_MAPPING = "expected a mapping"


def validate_document(document: Document, plan: Plan | None) -> str:
    """Validate one document; return its kind."""
    data = document.data
    if not isinstance(data, dict):
        raise InputError("expected a mapping (a plan, experiment or probe set)", file=document.path)
    if looks_like_journal(data):
        journal_from_document(document)
        return "journal"
    if data.get("kind") == "tabletop":
        validate_as(document, Tabletop, TabletopError, _NOT_A_MAPPING)
        return "tabletop"
    if data.get("kind") == "findings":
        validate_as(document, FindingsFile, FindingsError, _NOT_A_MAPPING)
        return "findings"
    if data.get("kind") == "probe-set":
        validate_as(document, ProbeSet, ProbeSetError, _NOT_A_MAPPING)
        return "probe set"
    if "method" in data or "steady-state-hypothesis" in data:
        if experiment_from_document(document, plan).plain:
            return "experiment; runs as a plain experiment; nothing is measured against the plan"
        return "experiment"
    if "components" in data and "regions" in data:
        plan_from_document(document)
        return "plan"
    if "samples" in data:
        protocol = plan.protocol if plan is not None else None
        problems = golden_set_problems(data, protocol)
        if problems:
            raise InputError("; ".join(problems), file=document.path)
        return f"golden set, {protocol.kind} protocol" if protocol else "golden set"
    raise InputError(
        "cannot tell what this is: a plan has regions and components, an "
        "experiment has a method, a probe set has kind: probe-set, a golden set has "
        "samples, a journal has experiment and run",
        file=document.path,
    )


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(path_type=Path),
    envvar="AIDRILL_PLAN",
    default=None,
    help="Plan to check experiment components against (default: drplan.yaml when it exists).",
)
def validate(files: tuple[Path, ...], plan_path: Path | None) -> None:
    """Check plans, experiments and probe sets before anything runs."""
    failed = 0
    plan: Plan | None = None
    try:
        if plan_path is not None or Path("drplan.yaml").exists():
            plan = load_plan(plan_path or Path("drplan.yaml"))
    except InputError as exc:
        errors.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise SystemExit(2) from None
    for path in files:
        try:
            kind = validate_document(read_document(path), plan)
        except (InputError, RefusedError) as exc:
            failed += 1
            errors.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            continue
        console.print(f"ok: {path} ({kind})")
    if failed:
        raise SystemExit(2)
