"""``aidrill demo``: the lab, the whole lab suite of drills, their reports, the lab down."""

from __future__ import annotations

import time
from pathlib import Path

import click

from aidrill.cli._common import console, plan_option, reports_errors, reports_option
from aidrill.cli._runs import live_option, load_all, run_suite, suite_paths
from aidrill.lab import start_lab, stop_lab
from aidrill.plan import load_plan
from aidrill.report import Quarter, write_quarterly_report
from aidrill.run import SuiteInterrupt

DEMO_EXPERIMENTS = tuple(
    Path("experiments/lab") / f"{name}.yaml"
    for name in (
        "gpu-node-loss",
        "gpu-node-loss-llm",
        "region-failover",
        "region-failover-no-gpu-capacity",
        "feature-store-failover",
        "replication-lag",
        "vector-index-loss",
        "model-artifact-deletion",
        "model-registry-loss",
        "model-alias-bad-version",
        "storage-throttle",
        "full-region-failover",
        "network-degradation",
        "lying-health",
        "lying-health-ejected",
        "wrong-model",
        "wrong-model-ejected",
        "stuck-loading",
        "gpu-degradation",
        "slow-drip",
    )
)


@click.command()
@plan_option
@reports_option
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=Path(".aidrill/demo"),
    show_default=True,
    help="State directory of the demo's own lab.",
)
@click.option(
    "--heal/--no-heal",
    default=True,
    show_default=True,
    help="Reset the lab before a drill when it is not nominal.",
)
@live_option
@reports_errors
def demo(plan_path: Path, reports_dir: Path, state_dir: Path, heal: bool, live: bool) -> None:
    """Run the lab drills end to end on this machine and write their reports: the
    plan's `lab` suite (the twenty shipped lab drills), run as `aidrill drill` runs one.

    Each drill starts from a nominal lab. Exits 0 when every drill ran valid (a missed
    target is a finding, not a failure) and 3 when any drill was invalid. Ctrl-C or
    SIGTERM rolls the current drill back, runs no further drill, stops the lab and
    exits 130/143.
    """
    started = time.perf_counter()
    plan = load_plan(plan_path)
    paths = suite_paths(plan, plan_path, "lab") if "lab" in plan.suites else list(DEMO_EXPERIMENTS)
    load_all(paths, plan_path)  # every drill validates before the lab starts
    with SuiteInterrupt() as interrupt:
        try:
            with console.status("starting the embedded two-region lab…"):
                lab = start_lab(state_dir, plan_path)
            console.print(
                f"lab up in {time.perf_counter() - started:.1f}s "
                f"({lab.info.topology}, router {lab.info.router_url})"
            )
            outcomes = run_suite(
                paths, plan_path, reports_dir, state_dir, heal, [], "lab", interrupt, live
            )
        except KeyboardInterrupt:
            outcomes = []  # stopped while the lab started: no drill ran
        finally:
            with console.status("stopping the lab…"):
                stop_lab(state_dir)
    if interrupt.signal is not None:
        console.print(
            f"demo stopped by {interrupt.signal} after {len(outcomes)} of {len(paths)} drills; "
            f"the lab is down. Evidence so far: {(reports_dir / 'index.html').resolve()} "
            "(`aidrill report` builds the quarter's report from it)"
        )
        raise SystemExit(interrupt.exit_code)
    index = reports_dir / "index.html"
    quarter = Quarter.current()
    with console.status(f"writing the {quarter} quarterly report…"):
        write_quarterly_report(
            plan,
            plan_path,
            quarter,
            reports_dir / "runs",
            reports_dir / str(quarter),
        )
    console.print(f"demo finished in {time.perf_counter() - started:.0f}s")
    console.print(f"run pages: {index.resolve()}")
    console.print(
        f"quarterly report: {(reports_dir / str(quarter) / 'index.html').resolve()} "
        f"(verify it with `aidrill verify {reports_dir / str(quarter)}`)"
    )
    invalid = [o.run_dir.name for o in outcomes if not o.valid]
    if invalid:
        console.print(
            f"[bold red]{len(invalid)} of {len(outcomes)} drills were invalid[/] "
            f"(they measured nothing): {', '.join(invalid)}"
        )
        raise SystemExit(3)
