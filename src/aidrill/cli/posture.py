"""``aidrill posture``: what the AWS estate's configuration promises, per component."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from aidrill.cli._common import console, plan_option, reports_errors
from aidrill.errors import RefusedError
from aidrill.kinds import target_kind, target_kinds
from aidrill.plan import load_plan
from aidrill.posture import Posture, write_posture

_STYLE = {"pass": "green", "fail": "bold red", "unknown": "yellow"}


@click.command()
@plan_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("reports/posture"),
    show_default=True,
    help="Where posture.json and posture.html go (`aidrill report` reads them there).",
)
@reports_errors
def posture(plan_path: Path, out_dir: Path) -> None:
    """Check, read-only and inside the plan's allow-list, what the AWS estate's
    configuration promises for each component: replication, capacity in the DR region,
    failover records, backups. Exit 0: no check failed (unknowns are listed); 1: a check
    failed; 2: bad input or refused."""
    plan = load_plan(plan_path)
    read = target_kind(plan.target).posture
    if read is None:
        able = sorted(name for name, kind in target_kinds().items() if kind.posture)
        raise RefusedError(
            f"target {plan.target!r} has no posture checks (kinds that have: "
            f"{', '.join(able) or 'none'}; set the plan's target and its section)"
        )
    with console.status("reading the estate's configuration…"):
        result: Posture = read(plan)
    table = Table(title=f"Configuration posture of {plan.system} (account {result.account})")
    for column in ("check", "result", "why"):
        table.add_column(column)
    for check in result.checks:
        table.add_row(check.id, f"[{_STYLE[check.status]}]{check.status}[/]", check.why)
    console.print(table)
    estimates = Table(title="Estimated bounds per component")
    for column in ("component", "RTO", "RPO"):
        estimates.add_column(column)
    for component in result.components:
        estimates.add_row(component.name, component.estimate.rto, component.estimate.rpo)
    console.print(estimates)
    paths = write_posture(result, out_dir)
    counts = result.counts
    console.print(
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['unknown']} unknown; "
        f"written to {', '.join(str(p) for p in paths)}"
    )
    raise SystemExit(result.exit_code)
