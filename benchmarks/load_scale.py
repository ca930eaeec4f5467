"""Benchmark: aidrill's Locust load, side by side in one run.

    python benchmarks/load_scale.py [--seconds 15] [--users 20] [--repeats 3]

- listener overhead: requests/s of aidrill's locustfile against a fast loopback endpoint
  with and without aidrill's per-bucket listener (same user class, same users);
- scaling: requests/s with one Locust process, and with Locust's master and 1 and 2
  workers, against the same endpoint;
- merge exactness: the same 20,000 samples through 1 and through 4 workers' aggregators
  give identical 100 ms buckets.

The endpoint is a minimal keep-alive HTTP server (gevent) in its own process answering
/predict the way the lab's GPU nodes do (the same JSON fields, X-Aidrill-Region,
X-Aidrill-Feature-Age and X-Aidrill-Node), each reply in one write, so what is measured
is the load side.
For the listener comparison, on a machine with two or more cores, the endpoint and the
Locust process are pinned to different cores (``sched_setaffinity``): each then has a
core of its own and the scheduler's placement stops adding its noise to the pair.
Alongside requests/s it prints the Locust process's CPU time per request, the steadier
figure of the listener's cost. Prints a Markdown table. RTO fidelity over repetitions
is `benchmarks/lab_drills.py`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ["PYTHONPATH"] = str(REPO / "src")

from aidrill.load._aggregator import BucketAggregator  # noqa: E402

LOCUSTFILE = REPO / "src/aidrill/load/locustfile.py"
# A keep-alive server answering every request with ``reply`` in one write (no
# Nagle/delayed-ACK stall between header and body); what comes before it sets ``reply``.
SERVE_REPLY = """
def serve(sock, address):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffered = b""
    while True:
        while b"\\r\\n\\r\\n" not in buffered:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffered += chunk
        head, _, buffered = buffered.partition(b"\\r\\n\\r\\n")
        length = 0
        for line in head.split(b"\\r\\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(buffered) < length:
            buffered += sock.recv(65536)
        buffered = buffered[length:]
        sock.sendall(reply)
server = StreamServer(("127.0.0.1", 0), serve)
server.start()
print(server.server_port, flush=True)
server.serve_forever()
"""
SERVER = (
    """
import json, socket
from gevent.server import StreamServer
body = json.dumps({"label": "cat", "region": "bench", "node": "bench-gpu-1",
                   "features": "online"}).encode()
reply = (b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nX-Aidrill-Region: bench\\r\\n"
         b"X-Aidrill-Feature-Age: 0.412\\r\\nX-Aidrill-Node: bench-gpu-1\\r\\n"
         b"Content-Length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
"""
    + SERVE_REPLY
)


def start_endpoint() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    return process, f"http://127.0.0.1:{port}"


ALL_CPUS: set[int] = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


def pin(pid: int, cpus: set[int] | None) -> None:
    """Restrict a process to ``cpus`` (None: every core again); no-op where unsupported."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, cpus if cpus is not None else ALL_CPUS)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def locust_rps(
    host: str,
    work: Path,
    users: int,
    seconds: int,
    listener: bool,
    workers: int,
    cpus: set[int] | None = None,
    golden_set: dict[str, Any] | None = None,
    locustfile: Path | None = None,
) -> tuple[float, float]:
    """Requests/s of one Locust run, and its processes' CPU seconds per request (in us);
    ``golden_set`` and ``locustfile`` replace the lab-shaped ones (stream_load.py)."""
    golden = work / "golden.json"
    samples = [{"entity": f"e{i}", "features": [0.1, 0.2], "label": "cat"} for i in range(50)]
    golden.write_text(json.dumps(golden_set or {"samples": samples}))
    prefix = work / f"stats-{listener}-{workers}-{time.monotonic_ns()}"
    env = {
        **os.environ,
        "AIDRILL_GOLDEN_SET": str(golden),
        "AIDRILL_RATE_PER_USER": "10000",  # unthrottled: as fast as each user can go
        "AIDRILL_TIMELINE": str(work / "timeline.jsonl"),
        "AIDRILL_READY_FILE": str(work / "ready"),  # written at the test's start
        "AIDRILL_BENCH_NO_LISTENER": "" if listener else "1",
    }
    base = [sys.executable, "-m", "locust", "-f", str(locustfile or LOCUSTFILE), "--headless",
            "-u", str(users), "-r", str(users), "--run-time", f"{seconds}s", "--host", host,
            "--only-summary", "--loglevel", "ERROR", "--csv", str(prefix)]  # fmt: skip
    children = []
    if workers:
        port = 5600 + random.randrange(300)
        base += ["--master", "--expect-workers", str(workers), "--master-bind-host",
                 "127.0.0.1", "--master-bind-port", str(port)]  # fmt: skip
        for _ in range(workers):
            children.append(subprocess.Popen(
                [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
                 "--master-host", "127.0.0.1", "--master-port", str(port),
                 "--loglevel", "ERROR"],
                env={**env, "AIDRILL_LOAD_ROLE": "worker"}, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))  # fmt: skip
    role = "master" if workers else "local"
    ready = work / "ready"
    ready.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    locust = subprocess.Popen(base, env={**env, "AIDRILL_LOAD_ROLE": role},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    if cpus is not None:
        pin(locust.pid, cpus)
    try:
        # CPU time from the test's start: Locust's own start-up (imports) is left out.
        while not ready.exists() and locust.poll() is None:
            time.sleep(0.01)
        started_cpu = cpu_seconds(locust.pid)
        if locust.wait(seconds + 60) != 0:
            raise SystemExit(f"locust exited with {locust.returncode}")
    finally:
        if locust.poll() is None:
            locust.kill()
            locust.wait()
    for child in children:
        child.wait(30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(f"{prefix}_stats.csv") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    aggregated = rows["Aggregated"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) - started_cpu
    requests = int(aggregated["Request Count"])
    return float(aggregated["Requests/s"]), cpu / max(requests, 1) * 1e6


def merge_is_exact() -> bool:
    rng = random.Random(3)
    samples = [(1000 + rng.uniform(0, 10), rng.lognormvariate(-3, 1), rng.random() > 0.05,
                rng.choice([0.0, 1.0]), rng.choice(["a", "b"])) for _ in range(20_000)]  # fmt: skip
    results = []
    for workers in (1, 4):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "t.jsonl"
            master = BucketAggregator(path, 0.1, 0.0)
            parts = [BucketAggregator(None, 0.1, 0.0) for _ in range(workers)]
            for number, sample in enumerate(samples):
                parts[number % workers].add(*sample)
            for part in parts:
                master.merge(part.drain())
            master.flush(0, final=True)
            master.close()
            records = [json.loads(line) for line in path.read_text().splitlines()]
            for record in records:
                record["correct"] = round(record["correct"], 9)
            results.append(records)
    return results[0] == results[1] and len(results[0]) == 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved runs without and with the listener"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="leave core placement to the scheduler"
    )
    args = parser.parse_args()
    cores = sorted(ALL_CPUS)
    pinned = not args.no_pin and len(cores) >= 2
    load_cpus, endpoint_cpus = ({cores[0]}, {cores[1]}) if pinned else (None, None)
    endpoint, host = start_endpoint()
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            if endpoint_cpus is not None:
                pin(endpoint.pid, endpoint_cpus)
            # Alternate the two so that a slow spell of the machine hits both alike.
            for _ in range(args.repeats):
                for listener in (False, True):
                    runs[listener].append(
                        locust_rps(host, work, args.users, args.seconds, listener, 0, load_cpus)
                    )
            for listener, label in ((False, "without"), (True, "with")):
                rps = statistics.median(r for r, _ in runs[listener])
                cpu = statistics.median(c for _, c in runs[listener])
                rows.append((f"one process, {label} aidrill's listener", rps, f"{cpu:.1f}"))
            if endpoint_cpus is not None:
                pin(endpoint.pid, None)  # the scaling runs share every core
            for label, workers in (("master + 1 worker, with the listener", 1),
                                   ("master + 2 workers, with the listener", 2)):  # fmt: skip
                rps, _ = locust_rps(host, work, args.users, args.seconds, True, workers)
                rows.append((label, rps, "—"))
    finally:
        endpoint.terminate()
        endpoint.wait(10)
    placement = (
        f"Locust pinned to core {cores[0]}, endpoint to core {cores[1]} for the listener pair"
        if pinned else "no pinning"
    )  # fmt: skip
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.users} users, {args.seconds} s each; "
          f"{placement}\n")  # fmt: skip
    print("| load | requests/s | Locust CPU per request (us) |\n|---|---|---|")
    for label, rps, cpu in rows:
        print(f"| {label} | {rps:.0f} | {cpu} |")
    for listener, label in ((False, "without"), (True, "with")):
        print(f"runs {label} the listener: "
              f"{', '.join(f'{r:.0f} req/s ({c:.1f} us)' for r, c in runs[listener])}")  # fmt: skip
    pairs = [w[0] / wo[0] for w, wo in zip(runs[True], runs[False], strict=True)]
    print(
        f"listener overhead ratio (median with / median without): {rows[1][1] / rows[0][1]:.3f}"
        f" (pairwise {', '.join(f'{r:.3f}' for r in pairs)}; median pair "
        f"{statistics.median(pairs):.3f})"
    )
    cpu_without = statistics.median(c for _, c in runs[False])
    cpu_with = statistics.median(c for _, c in runs[True])
    print(
        f"listener CPU cost: {cpu_with - cpu_without:.1f} us per request; CPU ratio "
        f"(without / with) {cpu_without / cpu_with:.3f}"
    )
    print(f"merge exact (20,000 samples, 1 vs 4 workers, 100 ms buckets): {merge_is_exact()}")


if __name__ == "__main__":
    main()
