"""Benchmark: the lab's memory footprint, idle for a while or through the demo.

    python benchmarks/lab_soak.py --idle 30      # start a lab, watch it 30 minutes
    python benchmarks/lab_soak.py --demo         # run `aidrill demo`, watch its lab

Every process of the lab (daemon, GPU workers, S3 servers, Redis) shares the daemon's
process group; each sample sums their resident memory (RSS, which counts shared pages
once per process, so it over-states) and their proportional share (PSS). It prints
the first, peak and last totals and the growth from the first sample after warm-up
to the last, and writes every sample as JSON lines next to the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from aidrill.lab import start_lab, stop_lab  # noqa: E402

MIB = 1024 * 1024


def group_memory(pgid: int) -> tuple[int, int, int]:
    """(processes, RSS bytes, PSS bytes) of the live processes in process group ``pgid``."""
    count = rss = pss = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[2]) != pgid:
                continue
            count += 1
            for line in (entry / "smaps_rollup").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("Rss", "Pss"):
                    kib = int(value.split()[0]) * 1024
                    rss += kib if name == "Rss" else 0
                    pss += kib if name == "Pss" else 0
        except (OSError, ValueError, IndexError):
            continue
    return count, rss, pss


def lab_pgid(state_dir: Path, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return int((state_dir / "daemon.pid").read_text())
        except (OSError, ValueError):
            time.sleep(0.5)
    raise SystemExit(f"no lab appeared in {state_dir}")


def watch(pgid: int, until: float, interval: float, log: Path, busy: subprocess.Popen | None):
    samples = []
    started = time.time()
    with log.open("w") as out:
        while time.time() < until and (busy is None or busy.poll() is None):
            count, rss, pss = group_memory(pgid)
            if count == 0 and samples:
                break
            sample = {"t": round(time.time() - started, 1), "processes": count,
                      "rss_mib": round(rss / MIB, 1), "pss_mib": round(pss / MIB, 1)}  # fmt: skip
            samples.append(sample)
            out.write(json.dumps(sample) + "\n")
            out.flush()
            print(f"{sample['t']:7.0f}s  {count:3d} processes  RSS {sample['rss_mib']:7.1f} MiB"
                  f"  PSS {sample['pss_mib']:7.1f} MiB", flush=True)  # fmt: skip
            time.sleep(interval)
    return samples


def summarise(samples: list[dict], warm_up: float) -> dict:
    settled = [s for s in samples if s["t"] >= warm_up] or samples
    first, last = settled[0], settled[-1]
    return {
        "samples": len(samples),
        "first_rss_mib": samples[0]["rss_mib"],
        "peak_rss_mib": max(s["rss_mib"] for s in samples),
        "peak_pss_mib": max(s["pss_mib"] for s in samples),
        "after_warm_up_rss_mib": first["rss_mib"],
        "last_rss_mib": last["rss_mib"],
        "growth_after_warm_up_percent": round(100 * (last["rss_mib"] / first["rss_mib"] - 1), 1),
        "growth_after_warm_up_pss_percent": round(
            100 * (last["pss_mib"] / first["pss_mib"] - 1), 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--idle", type=float, metavar="MINUTES", help="watch an idle lab")
    mode.add_argument("--demo", action="store_true", help="watch the demo's lab")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--warm-up", type=float, default=120.0, help="seconds before growth counts")
    parser.add_argument("--out", type=Path, default=Path("soak.jsonl"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aidrill-soak-"))
    try:
        if args.idle is not None:
            state = work / "lab"
            start_lab(state, REPO / "drplan.yaml")
            try:
                samples = watch(lab_pgid(state), time.time() + args.idle * 60, args.interval,
                                args.out, None)  # fmt: skip
            finally:
                stop_lab(state)
        else:
            for name in ("drplan.yaml", "experiments", "probes"):
                source = REPO / name
                copy = shutil.copytree if source.is_dir() else shutil.copy
                copy(source, work / name)
            demo = subprocess.Popen(
                [sys.executable, "-m", "aidrill", "demo"],
                cwd=work,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            )
            samples = watch(lab_pgid(work / ".aidrill/demo"), time.time() + 3600, args.interval,
                            args.out, demo)  # fmt: skip
            print(f"demo exited {demo.wait()}")
        summary = summarise(samples, args.warm_up)
        print(json.dumps(summary, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
