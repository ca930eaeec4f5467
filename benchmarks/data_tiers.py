"""Benchmark: RPO measured vs ground truth, and vector-index restore vs rebuild times.

Run from the repository root:  python benchmarks/data_tiers.py [--repeat 5]

1. Starts its own lab and runs ``replication-lag`` and ``vector-index-loss``
   ``--repeat`` times each; compares the measured feature-store RPO with the lab's
   ground truth (replication paused → primary lost) and the measured vector-index RPO
   with the age of the snapshot the lab really restored.
2. Times both index recovery paths, restore-from-snapshot and rebuild-from-embeddings,
   through a real S3 API (moto server) at the lab's index size and at 10 times it.
Prints Markdown tables to paste into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aidrill.experiment import load_experiment
from aidrill.lab import start_lab, stop_lab
from aidrill.lab.data._storage import RegionStore
from aidrill.lab.data._vectors import (
    EMBEDDINGS_PREFIX,
    SNAPSHOTS_PREFIX,
    IndexService,
    make_corpus,
    pack_chunk,
    pack_snapshot,
)
from aidrill.lab.data._vectors import build_index as build_hnsw
from aidrill.lab.network._proxy import ProxyHub
from aidrill.plan import load_plan
from aidrill.run import run_experiment_file

PLAN = Path("drplan.yaml")


def _events(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def _component(result: dict[str, Any], tier: str) -> dict[str, Any]:
    return next(c for c in result["components"] if c["tier"] == tier)


def rpo_accuracy(repeat: int, work: Path) -> list[tuple[str, float, float]]:
    plan = load_plan(PLAN)
    state = work / "lab"
    start_lab(state, PLAN)
    rows = []
    try:
        for name in ("replication-lag", "vector-index-loss"):
            experiment = load_experiment(Path(f"experiments/lab/{name}.yaml"), plan)
            for _ in range(repeat):
                outcome = run_experiment_file(experiment, PLAN, work / "reports", state)
                result = outcome.result.to_json() if outcome.result else {}
                events = _events(outcome.run_dir)
                if name == "replication-lag":
                    paused = next(
                        e for e in events if e["kind"] == "lab:feature_replication_paused"
                    )
                    failed = next(e for e in events if e["kind"] == "lab:feature_primary_failed")
                    truth = failed["time"] - paused["time"]
                    measured = _component(result, "feature-store")["achieved"]["rpo_seconds"]
                    rows.append(("feature-store (pause → primary lost)", measured, truth))
                else:
                    t_fault = next(e["time"] for e in events if e["kind"] == "fault_injected")
                    restored = next(e for e in events if e["kind"] == "lab:vector_index_restored")
                    truth = t_fault - restored["data_as_of"]
                    measured = _component(result, "vector-index")["achieved"]["rpo_seconds"]
                    rows.append(("vector-index (canary vectors vs snapshot restored)", measured,
                                 truth))  # fmt: skip
    finally:
        stop_lab(state)
    return rows


def restore_vs_rebuild(size: int, work: Path, rounds: int = 3) -> tuple[float, float, int]:
    """Median seconds of restore-from-snapshot and rebuild-from-embeddings at ``size``."""
    hub = ProxyHub()
    log_dir = work / f"logs-{size}"
    log_dir.mkdir(parents=True, exist_ok=True)
    store = RegionStore("bench", hub, log_dir)
    try:
        store.create_bucket()
        base, _ = make_corpus(size)
        now = time.time()
        store.put(
            f"{EMBEDDINGS_PREFIX}{int(now * 1000):015d}.npz",
            pack_chunk(base, [""] * size),
            {"created-at": f"{now:.3f}", "count": str(size)},
        )
        snapshot = pack_snapshot(build_hnsw(base), {})
        store.put(
            f"{SNAPSHOTS_PREFIX}{int(now * 1000):015d}.npz",
            snapshot,
            {"created-at": f"{now:.3f}", "ntotal": str(size)},
        )
        service = IndexService("bench", store, lambda *a, **k: None)
        restores = [service.restore_snapshot()["seconds"] for _ in range(rounds)]
        rebuilds = [service.rebuild_from_embeddings()["seconds"] for _ in range(rounds)]
        service.stop()
        return statistics.median(restores), statistics.median(rebuilds), len(snapshot)
    finally:
        store.stop()
        hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aidrill-bench-data-"))
    lab_size = load_plan(PLAN).lab.index_size
    timings = [(size, *restore_vs_rebuild(size, work)) for size in (lab_size, lab_size * 10)]
    rows = rpo_accuracy(args.repeat, work)
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}, python "
          f"{platform.python_version()}")  # fmt: skip
    print("\n| component | measured RPO (s) | ground truth (s) | difference (s) |")
    print("|---|---|---|---|")
    for name, measured, truth in rows:
        print(f"| {name} | {measured:.3f} | {truth:.3f} | {measured - truth:+.3f} |")
    for name in sorted({r[0] for r in rows}):
        diffs = [abs(m - t) for n, m, t in rows if n == name]
        print(f"\n{name}: max |difference| {max(diffs):.3f} s, mean {statistics.mean(diffs):.3f} s")
    print("\n| vectors | snapshot size | restore from snapshot (s) | rebuild from embeddings (s) |")
    print("|---|---|---|---|")
    for size, restore, rebuild, snapshot in timings:
        print(f"| {size:,} | {snapshot / 2**20:.1f} MiB | {restore:.3f} | {rebuild:.3f} |")


if __name__ == "__main__":
    main()
