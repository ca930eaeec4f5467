"""``aidrill report``: the quarterly report over every run, tabletop and finding."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import click

from aidrill.cli._common import console, plan_option, reports_errors
from aidrill.plan import load_plan
from aidrill.report import (
    FORMATS,
    Quarter,
    add_signoff,
    check_runs_path,
    read_signoffs,
    sign_manifest,
    write_quarterly_report,
)

sign_key_option = click.option(
    "--sign-key",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="AIDRILL_SIGNING_KEY",
    help="Ed25519 private key (from `aidrill keygen`) to sign manifest.json with.",
)


@click.group(invoke_without_command=True)
@click.option("--quarter", help="Quarter such as 2026-Q4 (default: the current one, UTC).")
@click.option(
    "--runs",
    "runs_dir",
    type=click.Path(path_type=Path),
    default=Path("reports/runs"),
    show_default=True,
    help="A folder of run directories and plain Chaos Toolkit journals, or one journal.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Output folder (default: reports/<quarter>).",
)
@click.option(
    "--format",
    "formats",
    default=",".join(FORMATS),
    show_default=True,
    help="Comma-separated formats.",
)
@click.option(
    "--tabletops",
    "tabletops_dir",
    type=click.Path(path_type=Path),
    default=Path("tabletops"),
    show_default=True,
)
@click.option(
    "--findings",
    "findings_path",
    type=click.Path(path_type=Path),
    default=Path("findings.yaml"),
    show_default=True,
)
@click.option(
    "--posture",
    "posture_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("reports/posture/posture.json"),
    show_default=True,
    help="The latest `aidrill posture` record (left out when absent).",
)
@plan_option
@sign_key_option
@click.pass_context
@reports_errors
def report(
    context: click.Context,
    quarter: str | None,
    runs_dir: Path,
    out_dir: Path | None,
    formats: str,
    tabletops_dir: Path,
    findings_path: Path,
    posture_path: Path,
    plan_path: Path,
    sign_key: Path | None,
) -> None:
    """Write the quarterly report: HTML, PDF, JSON, JUnit and Markdown, plus a manifest
    (signed with --sign-key). `aidrill report sign DIR` records a sign-off."""
    if context.invoked_subcommand is not None:
        return
    which = Quarter.parse(quarter) if quarter else Quarter.current()
    out = out_dir or Path("reports") / str(which)
    plan = load_plan(plan_path)
    if not check_runs_path(runs_dir):
        console.print(
            f"[yellow]{runs_dir} holds no runs yet[/]: every component reads as not drilled"
        )
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    started = time.perf_counter()

    build = partial(
        write_quarterly_report,
        plan,
        plan_path,
        which,
        runs_dir,
        out,
        chosen,
        tabletops_dir,
        findings_path,
        posture_path=posture_path,
    )
    if console.is_terminal:
        with console.status(f"building the {which} report…") as status:
            result = build(progress=lambda step: status.update(f"{which} report: {step}…"))
    else:  # a CI log or a pipe: one line per step, with the time so far
        result = build(
            progress=lambda step: console.print(
                f"{which} report: {step} ({time.perf_counter() - started:.1f} s)"
            )
        )
    counts = result.counts
    console.print(
        f"{which}: {len(result.runs)} run(s), {len(result.tabletops)} tabletop(s); "
        f"{counts['met']} met, {counts['missed']} missed, {counts['not drilled']} not drilled; "
        f"{len(result.open_findings)} open finding(s)"
    )
    console.print(
        f"report written to {out} in {time.perf_counter() - started:.1f}s "
        f"(evidence hash {result.evidence_hash[:16]}…)"
    )
    if sign_key is not None:
        console.print(f"manifest.json signed by key {sign_manifest(out, sign_key)}")


@report.command("sign")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--by", "by", required=True, help="Who signs off (a person, not a team).")
@click.option(
    "--role", required=True, help="Their role, e.g. 'DR plan owner', 'management review'."
)
@click.option(
    "--statement",
    default="I have reviewed this report and its evidence and accept it.",
    show_default=True,
)
@sign_key_option
@reports_errors
def sign(directory: Path, by: str, role: str, statement: str, sign_key: Path | None) -> None:
    """Append a sign-off to a report folder (signoffs.json). With --sign-key it carries
    its own signature; earlier sign-offs and the manifest's signature stay as they are."""
    record = add_signoff(directory, by, role, statement, sign_key)
    signed = f", signed by key {record.key_fingerprint}" if sign_key is not None else ""
    console.print(f"signed off by {record.by} ({record.role}) at {record.at}{signed}")
    if sign_key is not None and not (directory / "manifest.sig.json").exists():
        console.print(f"manifest.json signed by key {sign_manifest(directory, sign_key)}")
    others = len(read_signoffs(directory)) - 1
    if others:
        console.print(f"{others} earlier sign-off(s) kept")
