"""Benchmark: every experiment of experiments/aws or experiments/kubernetes against the
lab's AWS or Kubernetes twin.

    python benchmarks/twins.py --twin aws [--repeat 1]
    python benchmarks/twins.py --twin kubernetes [--repeat 1]

Starts a lab, exports what `aidrill lab status --env --twin TWIN` prints, runs each of
the twin's experiments with `aidrill run` (the driver's calls go through the twin's
API, its reconciler applies them to the lab), and compares the measured inference RTO
with the lab's own record (fault injected -> serving capacity restored). Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ["PYTHONPATH"] = str(REPO / "src")  # the lab's processes run this checkout too

from aidrill.lab import LabClient, start_lab, stop_lab  # noqa: E402


def truth_rto(lab: LabClient, run_dir: Path) -> float | None:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    faults = [e["time"] for e in events if e["kind"] == "fault_injected"]
    ends = [e["time"] for e in events if e["kind"] == "rollbacks_started"]
    if not faults or not ends:
        return None
    records = lab.ground_truth(since=faults[0])
    lost = [r["time"] for r in records if r["kind"] == "serving_capacity_lost"]
    back = [
        r["time"]
        for r in records
        if r["kind"] == "serving_capacity_restored" and lost and lost[0] < r["time"] <= ends[0]
    ]
    return back[0] - faults[-1] if back else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--twin", choices=["aws", "kubernetes"], default="aws")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix=f"aidrill-{args.twin}-twin-"))
    for name in ("drplan.yaml", "experiments", "probes"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, work / name)
    state = work / ".aidrill"
    lab = start_lab(state, work / "drplan.yaml", twins=(args.twin,))
    env = {**os.environ, **lab.twin_env(args.twin), "PYTHONPATH": str(REPO / "src")}
    rows: list[dict[str, Any]] = []
    try:
        for _ in range(args.repeat):
            for experiment in sorted((work / "experiments" / args.twin).glob("*.yaml")):
                started = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "aidrill", "run", "--heal", str(experiment)],
                    cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False,
                )  # fmt: skip
                runs = work / "reports/runs"
                if not runs.exists() or len(list(runs.iterdir())) <= len(rows):
                    raise SystemExit(f"{experiment.name} did not run:\n{done.stdout}{done.stderr}")
                run_dir = sorted(runs.iterdir())[-1]
                result = json.loads((run_dir / "result.json").read_text())
                inference = next(c for c in result["components"] if c["tier"] == "inference")
                rows.append(
                    {
                        "experiment": experiment.stem,
                        "exit": done.returncode,
                        "valid": result["valid"],
                        "seconds": time.perf_counter() - started,
                        "verdicts": ", ".join(
                            f"{c['name']}: {c['verdict']}" for c in result["components"]
                        ),
                        "measured": inference["achieved"].get("rto_seconds"),
                        "truth": truth_rto(lab, run_dir),
                    }
                )
    finally:
        stop_lab(state)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}; twin: {args.twin}")  # fmt: skip
    print("\n| experiment | exit | valid | wall | verdicts | measured RTO | lab truth | diff |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        measured, truth = row["measured"], row["truth"]
        diff = f"{measured - truth:+.2f} s" if measured is not None and truth is not None else "—"
        shown = "—" if measured is None else f"{measured:.2f} s"
        known = "—" if truth is None else f"{truth:.2f} s"
        print(f"| {row['experiment']} | {row['exit']} | {row['valid']} | {row['seconds']:.0f} s"
              f" | {row['verdicts']} | {shown} | {known} | {diff} |")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
