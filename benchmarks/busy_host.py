"""Benchmark: the demo on a busy host, every drill valid and measured against the truth.

    python benchmarks/busy_host.py [--hogs 2] [--keep]

Runs `aidrill demo` in a scratch copy of the repository's plan, experiments and probes
while ``--hogs`` CPU-bound processes (``while True: pass``) run beside it for the whole
demo, then reads every run directory: valid or not, the measured inference RTO beside
the lab's ground truth, and the measured RPO of each stateful tier beside the lab's
own record of what it restored. Meanwhile it samples, every half second, the resident
memory of every process the demo started (psutil): the lab's (its supervisor and every
process under it, summed, as issue 26 counts it) and everything's, and prints each
peak with what held the memory at the lab's peak. Prints Markdown tables for
benchmarks/README.md.
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
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]


def _events(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _truth(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == f"lab:{kind}"]


def _component(result: dict[str, Any], tier: str) -> dict[str, Any] | None:
    return next((c for c in result["components"] if c["tier"] == tier), None)


def rpo_truths(run_dir: Path, result: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(what, measured, ground truth) for each RPO the lab's own log can check."""
    events = _events(run_dir)
    faults = [e["time"] for e in events if e["kind"] == "fault_injected"]
    if not faults or not result.get("valid"):
        return []
    t_fault = faults[0]
    rows = []
    features = _component(result, "feature-store")
    paused = _truth(events, "feature_replication_paused")
    failed = _truth(events, "feature_primary_failed")
    if features and paused and failed:
        rows.append(("feature-store", features["achieved"]["rpo_seconds"],
                     failed[0]["time"] - paused[0]["time"]))  # fmt: skip
    vector = _component(result, "vector-index")
    # The index that served after the fault: the DR region's standby after a region's
    # loss, else the snapshot the lab restored.
    served = _truth(events, "vector_index_standby") or _truth(events, "vector_index_restored")
    if vector and served and isinstance(vector["achieved"].get("rpo_seconds"), float | int):
        rows.append(("vector-index", vector["achieved"]["rpo_seconds"],
                     t_fault - served[0]["data_as_of"]))  # fmt: skip
    # The registry changes lost: those the primary took after its last copy to DR (the
    # canary's granularity is 0.5 s, so the measurement is up to 0.5 s short of it).
    registry = _component(result, "model-registry")
    gone = _truth(events, "model_registry_lost") or _truth(events, "model_registry_unreachable")
    if registry and gone and isinstance(registry["achieved"].get("rpo_seconds"), float | int):
        rows.append(("model-registry", registry["achieved"]["rpo_seconds"],
                     gone[0]["time"] - gone[0]["last_copied_at"]))  # fmt: skip
    for job in ("training", "evaluation"):
        component = _component(result, job)
        resumed = [e for e in _truth(events, "pipeline_resumed") if e.get("job") == job]
        if component and resumed and resumed[0]["time"] >= t_fault:
            rows.append((job, component["achieved"]["rpo_seconds"],
                         t_fault - resumed[0]["checkpoint_created_at"]))  # fmt: skip
    return rows


def _kind(process: psutil.Process) -> str:
    """A short name for what a process is: its program, or its Python module."""
    command = process.cmdline()
    if len(command) > 2 and command[1] == "-m":
        return command[2]
    return Path(command[0]).name if command else process.name()


class ResidentPeaks:
    """Samples resident memory until stopped: the peak of the lab's processes summed
    (the detached supervisor ``aidrill.lab.control._daemon`` that runs in ``work``, and all
    under it) with its holders by kind at that peak, and the peak of everything (the
    lab and every descendant of the process ``root``)."""

    def __init__(self, root: int, work: Path, every: float = 0.5) -> None:
        self.root, self.work, self.every = root, work, every
        self.lab_peak = self.all_peak = 0
        self.lab_holders: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ResidentPeaks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def _supervisors(self) -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter():
            try:
                if "aidrill.lab.control._daemon" in process.cmdline() and (
                    Path(process.cwd()) == self.work
                    or any(str(self.work) in arg for arg in process.cmdline())
                ):
                    found.append(process)
            except psutil.Error:
                continue
        return found

    def sample(self) -> None:
        lab: list[psutil.Process] = []
        for supervisor in self._supervisors():
            lab.append(supervisor)
            try:
                lab += supervisor.children(recursive=True)
            except psutil.Error:
                continue
        try:
            others = psutil.Process(self.root).children(recursive=True)
        except psutil.Error:
            others = []
        rss: dict[int, tuple[str, int]] = {}
        for process in [*lab, *others]:
            try:
                rss[process.pid] = (_kind(process), process.memory_info().rss)
            except psutil.Error:
                continue
        lab_pids = {p.pid for p in lab}
        lab_total = sum(size for pid, (_, size) in rss.items() if pid in lab_pids)
        self.all_peak = max(self.all_peak, sum(size for _, size in rss.values()))
        if lab_total > self.lab_peak:
            self.lab_peak = lab_total
            self.lab_holders = Counter()
            for pid, (kind, size) in rss.items():
                if pid in lab_pids:
                    self.lab_holders[kind] += size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch folder.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aidrill-busy-"))
    for name in ("drplan.yaml", "experiments", "probes"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, work / name)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    started = time.perf_counter()
    try:
        with (
            subprocess.Popen(
                [sys.executable, "-m", "aidrill", "demo"],
                cwd=work,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            ) as process,
            ResidentPeaks(process.pid, work) as peaks,
        ):
            stdout, stderr = process.communicate(timeout=3600)
        demo = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    wall = time.perf_counter() - started
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}; {args.hogs} CPU hogs beside the demo")  # fmt: skip
    print(f"demo exit code {demo.returncode} in {wall:.0f} s\n")
    mib = 1024 * 1024
    print(f"resident peak: the lab's processes {peaks.lab_peak / mib:,.0f} MiB, everything "
          f"the demo started {peaks.all_peak / mib:,.0f} MiB; the lab's at its peak: "
          + ", ".join(f"{kind} {size / mib:,.0f} MiB"
                      for kind, size in peaks.lab_holders.most_common(8)) + "\n")  # fmt: skip
    print("| drill | valid | inference RTO measured | lab truth | difference | verdicts |")
    print("|---|---|---|---|---|---|")
    rpo_rows = []
    valid = 0
    runs = sorted((work / "reports/runs").iterdir())
    for run_dir in runs:
        result = json.loads((run_dir / "result.json").read_text())
        valid += bool(result.get("valid"))
        inference = _component(result, "inference")
        measured = (inference or {}).get("achieved", {}).get("rto_seconds")
        truth = (result.get("ground_truth") or {}).get("rto_seconds")
        diff = f"{measured - truth:+.2f} s" if measured is not None and truth is not None else "—"
        verdicts = ", ".join(f"{c['name']}: {c['verdict']}" for c in result["components"])
        name = run_dir.name.split("-", 1)[1]
        print(f"| {name} | {'yes' if result.get('valid') else 'NO'} | "
              f"{'—' if measured is None else f'{measured:.2f} s'} | "
              f"{'—' if truth is None else f'{truth:.2f} s'} | {diff} | {verdicts} |")  # fmt: skip
        rpo_rows += [(name, *row) for row in rpo_truths(run_dir, result)]
    print(f"\n{valid} of {len(runs)} drills valid\n")
    print("| drill | component | RPO measured | lab truth | difference |")
    print("|---|---|---|---|---|")
    for drill, what, measured, truth in rpo_rows:
        print(
            f"| {drill} | {what} | {measured:.2f} s | {truth:.2f} s | {measured - truth:+.2f} s |"
        )
    if demo.returncode != 0 or args.keep:
        if demo.returncode != 0:
            print("\n--- demo output ---\n" + demo.stdout[-4000:] + demo.stderr[-4000:])
        print(f"\nevidence kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
