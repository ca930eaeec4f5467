"""Benchmark: lab start time, wall time of each lab drill, and measured vs ground-truth
RTO over repeated gpu-node-loss runs.

Run from the repository root:  python benchmarks/lab_drills.py [--repeat 5]
It starts its own lab in a temporary state directory and writes runs under a
temporary reports directory; it prints a Markdown table to paste into README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from aidrill.experiment import load_experiment
from aidrill.lab import start_lab, stop_lab
from aidrill.plan import load_plan
from aidrill.run import run_experiment_file

PLAN = Path("drplan.yaml")
EXPERIMENTS = ["gpu-node-loss", "region-failover", "region-failover-no-gpu-capacity"]


def _rto(result: dict) -> tuple[float | None, float | None]:  # type: ignore[type-arg]
    inference = next(c for c in result["components"] if c["tier"] == "inference")
    return inference["achieved"]["rto_seconds"], result["ground_truth"]["rto_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    plan = load_plan(PLAN)
    work = Path(tempfile.mkdtemp(prefix="aidrill-bench-"))
    starts = []
    for attempt in range(3):
        state = work / f"start-{attempt}"
        began = time.perf_counter()
        start_lab(state, PLAN)
        starts.append(time.perf_counter() - began)
        stop_lab(state)
    state = work / "lab"
    start_lab(state, PLAN)
    rows = []
    try:
        for name in EXPERIMENTS:
            experiment = load_experiment(Path(f"experiments/lab/{name}.yaml"), plan)
            began = time.perf_counter()
            outcome = run_experiment_file(experiment, PLAN, work / "reports", state)
            rows.append(
                (
                    name,
                    time.perf_counter() - began,
                    *_rto(outcome.result.to_json() if outcome.result else {}),
                )
            )
        repeats = []
        experiment = load_experiment(Path("experiments/lab/gpu-node-loss.yaml"), plan)
        for _ in range(args.repeat):
            outcome = run_experiment_file(experiment, PLAN, work / "reports", state)
            repeats.append(_rto(outcome.result.to_json() if outcome.result else {}))
    finally:
        stop_lab(state)
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print(
        f"\nlab start (3 starts): {', '.join(f'{s:.2f}s' for s in starts)}; "
        f"median {statistics.median(starts):.2f}s\n"
    )
    print("| experiment | wall time | measured RTO | ground-truth RTO |")
    print("|---|---|---|---|")
    for name, wall, measured, truth in rows:
        print(f"| {name} | {wall:.1f}s | {_fmt(measured)} | {_fmt(truth)} |")
    print("\n| gpu-node-loss repetition | measured RTO | ground-truth RTO | difference |")
    print("|---|---|---|---|")
    diffs = []
    for index, (measured, truth) in enumerate(repeats, start=1):
        diff = None if measured is None or truth is None else measured - truth
        if diff is not None:
            diffs.append(abs(diff))
        print(f"| {index} | {_fmt(measured)} | {_fmt(truth)} | {_fmt(diff, signed=True)} |")
    if diffs:
        print(
            f"\nmax |measured - ground truth| = {max(diffs):.2f}s; "
            f"mean {statistics.mean(diffs):.2f}s"
        )
    print(json.dumps({"starts": starts, "rows": rows, "repeats": repeats}))


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "not recovered"
    return f"{value:+.2f}s" if signed else f"{value:.2f}s"


if __name__ == "__main__":
    main()
