"""Benchmark: the recovery phases of gpu-node-loss and region-failover (or the drills
``--drills`` names), repeated, with their spread, the RTO against the lab's truth, and
each measured phase boundary against the lab's ground-truth log (issue 28: "within one
bucket in 5/5 repetitions").

Run from the repository root:  python benchmarks/recovery_phases.py [--repeat 5]
It starts its own lab in a temporary state directory, runs the shipped experiments
with `hold-until-recovered` (a pause ends once the recovery is proven; what is
injected and measured is unchanged), and prints Markdown tables for
benchmarks/README.md. A boundary agrees when a ground-truth record of its step lies
within one bucket plus one lab health interval of it (the tolerance the lab tests use).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml

from aidrill.experiment import load_experiment
from aidrill.lab import start_lab, stop_lab
from aidrill.plan import load_plan
from aidrill.run import run_experiment_file

PLAN = Path("drplan.yaml")
DRILLS = ("gpu-node-loss", "region-failover")
# The lab's ground-truth records that mark each step (as tests/test_lab_drills.py).
STEP_TRUTH = {
    "detect": ("node_removed", "node_unhealthy", "node_provisioning", "router_region_down"),
    "provision": ("node_process_started",),
    "load": ("node_healthy",),
}


def _held(name: str, folder: Path) -> Path:
    """The shipped experiment with `hold-until-recovered` set."""
    document = yaml.safe_load(Path(f"experiments/lab/{name}.yaml").read_text())
    for extension in document.get("extensions") or []:
        if extension.get("name") == "aidrill":
            extension["hold-until-recovered"] = True
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _agreement(run_dir: Path, phases: list[dict[str, Any]], tolerance: float) -> list[bool]:
    """Per boundary between phases: a ground-truth record of its step nearby."""
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    t_fault = next(e["time"] for e in events if e["kind"] == "fault_injected")
    found = []
    for phase in phases[:-1]:
        step = phase["phase"].split("+")[-1]
        boundary = t_fault + phase["from_fault_seconds"] + phase["seconds"]
        truth = [e["time"] for e in events
                 if e["kind"].removeprefix("lab:") in STEP_TRUTH.get(step, ())]  # fmt: skip
        found.append(any(abs(t - boundary) <= tolerance for t in truth))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--drills", nargs="+", default=list(DRILLS), help="shipped lab drills (gpu-node-loss-llm: "
        "the same crash through the lab's streamed OpenAI-compatible API)",
    )  # fmt: skip
    args = parser.parse_args()
    plan = load_plan(PLAN)
    tolerance = plan.slo.bucket + plan.lab.health_interval
    work = Path(tempfile.mkdtemp(prefix="aidrill-phases-"))
    state = work / "lab"
    start_lab(state, PLAN)
    results: dict[str, list[tuple[float, list[dict[str, Any]], list[bool]]]] = {}
    off_truth: dict[str, list[float]] = {}
    try:
        for name in args.drills:
            experiment = load_experiment(_held(name, work), plan)
            for _ in range(args.repeat):
                outcome = run_experiment_file(experiment, PLAN, work / "reports", state)
                result = outcome.result.to_json() if outcome.result else {}
                inference = next(c for c in result["components"] if c["tier"] == "inference")
                phases = inference["achieved"].get("phases") or []
                agreed = _agreement(outcome.run_dir, phases, tolerance)
                rto = inference["achieved"]["rto_seconds"]
                results.setdefault(name, []).append((rto, phases, agreed))
                truth = (result.get("ground_truth") or {}).get("rto_seconds")
                if rto is not None and truth is not None:
                    off_truth.setdefault(name, []).append(rto - truth)
    finally:
        stop_lab(state)
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; {args.repeat} repetitions each\n"
    )
    for name, runs in results.items():
        print(f"### {name}\n")
        print("| phase | runs | min | median | max |")
        print("|---|---|---|---|---|")
        names = sorted({p["phase"] for _, phases, _ in runs for p in phases},
                       key=lambda n: ["detect", "provision", "load", "warm"].index(
                           n.split("+")[0]))  # fmt: skip
        for phase in names:
            seconds = [p["seconds"] for _, phases, _ in runs for p in phases
                       if p["phase"] == phase]  # fmt: skip
            print(f"| {phase} | {len(seconds)} | {min(seconds):.2f} s | "
                  f"{statistics.median(seconds):.2f} s | {max(seconds):.2f} s |")  # fmt: skip
        rtos = [rto for rto, _, _ in runs if rto is not None]
        if rtos:
            print(f"| RTO | {len(rtos)} | {min(rtos):.2f} s | {statistics.median(rtos):.2f} s | "
                  f"{max(rtos):.2f} s |")  # fmt: skip
        off = off_truth.get(name) or []
        if off:
            print(f"| RTO minus lab truth | {len(off)} | {min(off):+.2f} s | "
                  f"{statistics.median(off):+.2f} s | {max(off):+.2f} s |")  # fmt: skip
        agreeing = sum(all(agreed) and bool(agreed) for _, _, agreed in runs)
        print(f"\nboundaries within {tolerance:g} s of the ground truth in {agreeing} of "
              f"{len(runs)} runs\n")  # fmt: skip
    print(json.dumps({n: [(rto, phases, agreed) for rto, phases, agreed in runs]
                      for n, runs in results.items()}))  # fmt: skip


if __name__ == "__main__":
    main()
