"""``aidrill verify DIR``: recompute a report folder's manifest."""

from __future__ import annotations

from pathlib import Path

import click

from aidrill.cli._common import console, errors, reports_errors
from aidrill.report import (
    check_signature,
    check_signoffs,
    runs_changed_since_sealed,
    verify_manifest,
)


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--key",
    "public_key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Public key (.pub from `aidrill keygen`): also check manifest.json's signature.",
)
@reports_errors
def verify(directory: Path, public_key: Path | None) -> None:
    """Exit 0 when every file matches manifest.json (and, with --key, its signature
    holds); 1 naming every change otherwise."""
    result = verify_manifest(directory)
    signature = check_signature(directory, public_key) if public_key is not None else None
    for name in result.changed:
        errors.print(f"changed: {name}", soft_wrap=True)
    for name in result.missing:
        errors.print(f"missing: {name}", soft_wrap=True)
    for name in result.added:
        errors.print(f"added: {name}", soft_wrap=True)
    for name in result.links:
        errors.print(f"link: {name} (a report folder holds regular files only)", soft_wrap=True)
    if result.chain_broken:
        errors.print("the manifest's hash chain does not match its entries", soft_wrap=True)
    for name in result.recorded_links:
        console.print(f"note: the run held a link, recorded and not copied: {name}")
    for name in result.redacted:
        console.print(f"note: {name} is a redacted copy; the manifest keeps the original's hash")
    signoffs = check_signoffs(directory)
    for signoff in signoffs:
        (console if signoff.ok else errors).print(
            f"sign-off: {signoff.detail}: {signoff.record.statement}", soft_wrap=True
        )
    if signature is not None:
        (console if signature.ok else errors).print(f"signature: {signature.detail}")
    changed_runs = runs_changed_since_sealed(directory)
    for run, changes in changed_runs.items():
        for change in changes:
            errors.print(f"run {run} changed after it was recorded: {change}", soft_wrap=True)
    broken = [s for s in signoffs if not s.ok]
    if not result.ok or changed_runs or broken or (signature is not None and not signature.ok):
        raise SystemExit(1)
    console.print(f"verified: every file in {directory} matches manifest.json")
