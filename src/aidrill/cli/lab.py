"""``aidrill lab up|status|down|reset``."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from aidrill.cli._common import console, plan_option, reports_errors, state_dir_option
from aidrill.cli._runs import report_aborted_runs
from aidrill.errors import InputError
from aidrill.lab import TWINS, LabClient, read_fault_ledger, start_lab, stop_lab
from aidrill.plan import load_plan
from aidrill.targets import LeftFault


@click.group()
def lab() -> None:
    """Start, inspect, reset and stop the embedded two-region lab."""


@lab.command()
@state_dir_option
@plan_option
@click.option(
    "--topology",
    type=click.Choice(["active-passive", "active-active"]),
    help="Override the plan's topology.",
)
@click.option(
    "--twins",
    default="",
    metavar="aws,kubernetes",
    help="Also start these cloud twins (an AWS API on moto, a Kubernetes API per region), "
    "so experiments/aws and experiments/kubernetes run against the lab.",
)
@reports_errors
def up(state_dir: Path, plan_path: Path, topology: str | None, twins: str) -> None:
    """Start the lab in the background; return once it serves at full capacity."""
    load_plan(plan_path)
    wanted = [t.strip() for t in twins.split(",") if t.strip()]
    unknown = sorted(set(wanted) - set(TWINS))
    if unknown:
        raise InputError(f"unknown twin {', '.join(unknown)} (the lab has {', '.join(TWINS)})",
                         field="--twins")  # fmt: skip
    started = time.perf_counter()
    left_behind = [LeftFault.from_record(e) for e in read_fault_ledger(state_dir)]
    with console.status("starting the lab (training the model, booting GPU nodes)…"):
        client = start_lab(state_dir, plan_path, topology, twins=wanted)
    report_aborted_runs(left_behind, "`aidrill lab up`", client.ground_truth)
    info = client.info
    console.print(
        f"lab up in {time.perf_counter() - started:.1f}s: {info.topology}, "
        f"primary {info.primary}, DR {info.dr}; router {info.router_url}"
    )
    console.print(f"state in {state_dir}; stop it with `aidrill lab down`")


@lab.command()
@state_dir_option
@click.option(
    "--env",
    "as_env",
    is_flag=True,
    help="Print the shell exports that point AWS and Kubernetes clients, chaostoolkit "
    'drivers and aidrill at the lab\'s twins (eval "$(aidrill lab status --env)").',
)
@click.option(
    "--twin",
    type=click.Choice(["aws", "kubernetes"]),
    default="aws",
    show_default=True,
    help="With --env: which twin's plan AIDRILL_PLAN names.",
)
@reports_errors
def status(state_dir: Path, as_env: bool, twin: str) -> None:
    """Show regions, GPU nodes, routing, the twins and active faults."""
    client = LabClient(state_dir)
    if as_env:
        for name, value in sorted(client.twin_env(twin).items()):
            click.echo(f"export {name}={shlex.quote(value)}")
        return
    report = client.status()
    router = report["router"]
    console.print(
        f"router: {router['topology']}, active region {router['active']}, "
        f"serving capacity {report['serving_capacity']}/{report['nominal_capacity']}"
    )
    for region in report["regions"]:
        healthy = sum(n["healthy"] for n in region["nodes"])
        flags = [
            f
            for f, on in (
                ("FAILED", region["failed"]),
                ("no GPU capacity", region["capacity_exhausted"]),
            )
            if on
        ]
        console.print(
            f"  {region['name']}: {healthy}/{region['desired']} healthy GPU nodes, "
            f"{region['provisioning']} provisioning {' '.join(flags)}"
        )
    data = report.get("data")
    if data:
        replication = data["replication"]
        features = data["features"]
        console.print(
            f"  artifact replication: {'PAUSED' if replication['paused'] else 'running'}, "
            f"backlog {replication['backlog_seconds']}s, {replication['copied']} copied"
        )
        console.print(
            f"  feature store: primary in {features['active']}, replication link "
            f"{features['link']['mode']}"
        )
        for name, index in data["index"].items():
            loaded = f"{index['ntotal']} vectors" if index["loaded"] else index["source"]
            console.print(f"  vector index {name}: {loaded}")
        for job, pipeline in data["pipelines"].items():
            where = pipeline["region"] if pipeline["running"] else "STOPPED"
            console.print(f"  {job} pipeline: {where}, step {pipeline['step']}")
    if client.info.aws.get("missing"):
        console.print(f"  AWS twin: not served ({client.info.aws['missing']})")
    else:
        aws = client.twin_env()
        console.print(
            f"  AWS twin: {aws.get('AWS_ENDPOINT_URL')} (account 123456789012); plan "
            f"{aws.get('AIDRILL_PLAN')}; `aidrill lab status --env` exports it"
        )
    kube = client.info.kubernetes
    if kube.get("missing"):
        console.print(f"  Kubernetes twin: not served ({kube['missing']})")
    elif kube:
        contexts = ", ".join(kube.get("contexts", {}).values())
        console.print(
            f"  Kubernetes twin: contexts {contexts} in {kube.get('kubeconfig')}; plan "
            f"{kube.get('plan')}; `aidrill lab status --env --twin kubernetes` exports it"
        )
    for fault in report["faults"]:
        console.print(
            f"  active fault {fault['id']}: {fault['kind']} in {fault['region']}"
            f" (run {fault['owner'].get('run_id') or 'unknown'})"
        )


@lab.command()
@state_dir_option
@reports_errors
def down(state_dir: Path) -> None:
    """Stop the lab and every process it started."""
    if stop_lab(state_dir):
        console.print("lab stopped")
    else:
        console.print(f"no lab was running in {state_dir}")


@lab.command()
@state_dir_option
@reports_errors
def reset(state_dir: Path) -> None:
    """Clear every fault in the ledger (including a killed run's) and restore the lab."""
    with console.status("clearing faults and restoring nominal capacity…"):
        result = LabClient(state_dir).reset()
    left = result.get("cleared")
    cleared = (
        [LeftFault.from_record(e) for e in left if isinstance(e, dict)]
        if isinstance(left, list)
        else []
    )
    report_aborted_runs(cleared, "`aidrill lab reset`", LabClient(state_dir).ground_truth)
    console.print(
        "lab restored" if result["restored"] else "[red]lab not back at nominal capacity yet[/]"
    )
