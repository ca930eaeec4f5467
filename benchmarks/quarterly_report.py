"""Benchmark: `aidrill report` time and peak memory over synthetic quarters.

    python benchmarks/quarterly_report.py --runs 40 400

For each count it writes that many synthetic run directories (1-hour timelines at
1 s buckets, a fault at 20 minutes, recovery a few minutes later) in the formats
aidrill writes, then times `aidrill report` (all five formats and the manifest) in a
child process and reads that child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from aidrill._signing import seal_run
from aidrill.run._results import write_run_page, write_run_result

REPO = Path(__file__).resolve().parents[1]
HOUR = 3600


def write_run(runs: Path, index: int, start: float, rng: random.Random) -> None:
    stamp = datetime.fromtimestamp(start, UTC)
    run_dir = runs / f"{stamp:%Y%m%dT%H%M%SZ}-synthetic-{index:04d}"
    run_dir.mkdir(parents=True)
    t_fault = start + 20 * 60
    outage = rng.uniform(3, 30)
    recovered = t_fault + outage
    lines = []
    for second in range(HOUR):
        bucket_start = start + second
        down = t_fault <= bucket_start < recovered
        failures = 30 if down else (1 if rng.random() < 0.02 else 0)
        lines.append(
            json.dumps(
                {
                    "start": bucket_start,
                    "width": 1.0,
                    "requests": 30,
                    "failures": failures,
                    "p50": 0.12,
                    "p95": 0.24 + rng.random() / 50,
                    "p99": 0.3,
                    "max": 0.35,
                    "correct": 0 if down else 28,
                    "scored": 0 if down else 30,
                    "regions": {"lab-east": 30},
                }
            )
        )
    (run_dir / "timeline.jsonl").write_text("\n".join(lines) + "\n")
    shutil.copy(REPO / "drplan.yaml", run_dir / "plan.yaml")
    experiment = yaml.safe_load((REPO / "experiments/lab/gpu-node-loss.yaml").read_text())
    (run_dir / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    fault, rollback = experiment["method"][0]["name"], experiment["rollbacks"][0]["name"]
    events = [
        (start, "run_started", {"planned_faults": [fault], "participants": []}),
        (start + 0.5, "preflight", {"problems": []}),
        (start + 1, "load_started", {}),
        (t_fault, "fault_started", {"activity": fault}),
        (t_fault, "fault_injected", {"activity": fault}),
        (start + HOUR - 60, "rollbacks_started", {}),
        (start + HOUR - 50, "rollback_ran", {"activity": rollback, "status": "succeeded"}),
        (start + HOUR, "load_stopped", {}),
    ]
    (run_dir / "events.jsonl").write_text(
        "".join(json.dumps({"time": t, "kind": k, **d}) + "\n" for t, k, d in events)
    )
    iso = lambda t: datetime.fromtimestamp(t, UTC).isoformat()  # noqa: E731
    # result.json, report.html and the run's seal from the code a live run ends with.
    write_run_result(run_dir, "completed", False)
    write_run_page(run_dir)
    journal = {
        "experiment": experiment,
        "status": "completed",
        "deviated": False,
        "start": iso(start),
        "end": iso(start + HOUR),
        "run": [],
        "rollbacks": [],
    }
    (run_dir / "journal.json").write_text(json.dumps(journal))
    seal_run(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, nargs="+", default=[40, 400])
    parser.add_argument(
        "--keep", action="store_true", help="keep each quarter's runs and report (paths printed)"
    )
    args = parser.parse_args()
    rows = []
    stages: list[tuple[int, str]] = []
    for count in args.runs:
        work = Path(tempfile.mkdtemp(prefix="aidrill-report-bench-"))
        rng = random.Random(count)
        quarter_start = datetime(2026, 10, 1, tzinfo=UTC).timestamp()
        began = time.perf_counter()
        for index in range(count):
            write_run(work / "runs", index, quarter_start + index * 2 * HOUR, rng)
        generated = time.perf_counter() - began
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        began = time.perf_counter()
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "aidrill",
                "report",
                "--quarter",
                "2026-Q4",
                "--runs",
                str(work / "runs"),
                "--out",
                str(work / "report"),
                "--plan",
                str(REPO / "drplan.yaml"),
                "--tabletops",
                str(work / "none"),
                "--findings",
                str(work / "none.yaml"),
            ],
            check=False,
            capture_output=True,
        )
        if child.returncode not in (0, 1):  # 1: the quarter holds a missed target
            sys.exit(
                f"aidrill report failed ({child.returncode}):\n{child.stderr.decode()[-3000:]}"
            )
        elapsed = time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        # A fast report of runs it could not read measures nothing: refuse the figure.
        unread = [
            run["run_id"]
            for run in json.loads((work / "report" / "results.json").read_text())["runs"]
            if run.get("kind") == "broken"
        ]
        if unread:
            sys.exit(
                f"{len(unread)} of {count} runs were not read (first: {unread[0]}); see {work}"
            )
        size = sum(p.stat().st_size for p in (work / "report").rglob("*") if p.is_file())
        rows.append((count, elapsed, max(peak, before) / 1024, size / 2**20, generated))
        stages.append((count, where_the_time_goes(child.stdout.decode(), elapsed)))
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work)
    print("| runs | report time | peak RSS | report folder | evidence generation |")
    print("|---|---|---|---|---|")
    for count, elapsed, peak_mb, size_mb, generated in rows:
        print(
            f"| {count} | {elapsed:.1f} s | {peak_mb:.0f} MiB | {size_mb:.0f} MiB | "
            f"{generated:.1f} s |"
        )
    for count, where in stages:
        print(f"\n{count} runs, where the time goes: {where}")
    if len(rows) >= 2:
        (small, t_small, *_), (large, t_large, *_) = rows[0], rows[-1]
        print(f"\ngrowth: {large / small:.0f}x runs -> {t_large / t_small:.1f}x time")


def where_the_time_goes(output: str, elapsed: float) -> str:
    """Each step's seconds, from the report's progress lines (``... report: step (t s)``,
    printed when a step begins) and its last line (``report written ... in t s``); the
    rest of the child's wall time is the interpreter's start-up and exit."""
    begun = [
        (step, float(at)) for step, at in re.findall(r"report: (.+?) \((\d+(?:\.\d+)?) s\)", output)
    ]
    written = re.search(r"report written to .+?\sin\s+(\d+(?:\.\d+)?)s", output, flags=re.S)
    if not begun or written is None:
        return "(no progress lines)"
    ends = [at for _, at in begun[1:]] + [float(written.group(1))]
    parts = [f"{step} {end - at:.1f} s" for (step, at), end in zip(begun, ends, strict=True)]
    parts.append(f"start-up and exit {elapsed - float(written.group(1)):.1f} s")
    return "; ".join(parts)


if __name__ == "__main__":
    main()
