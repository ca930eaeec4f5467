"""Benchmark: aidrill's Locust load, side by side in one run.

    python benchmarks/load_scale.py [--seconds 15] [--users 20] [--repeats 3]

- listener overhead: requests/s of aidrill's locustfile against a fast loopback endpoint
  with and without aidrill's per-bucket listener (same user class, same users);
- scaling: requests/s with one Locust process, and with Locust's master and 1 and 2
  workers, against the same endpoint;
- merge exactness: the same 20,000 samples through 1 and through 4 workers' aggregators
  give identical 100 ms buckets.

The endpoint is a minimal keep-alive HTTP server (gevent) in its own process answering
/predict the way the lab's GPU nodes do (the same JSON fields, X-Aidrill-Region and
X-Aidrill-Feature-Age), each reply in one write, so what is measured is the load side.
Prints a Markdown table. RTO fidelity over repetitions is `benchmarks/lab_drills.py`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ["PYTHONPATH"] = str(REPO / "src")

from aidrill.load._aggregator import BucketAggregator  # noqa: E402

LOCUSTFILE = REPO / "src/aidrill/load/locustfile.py"
SERVER = """
import json, socket
from gevent.server import StreamServer
body = json.dumps({"label": "cat", "region": "bench", "node": "bench-gpu-1",
                   "features": "online"}).encode()
reply = (b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nX-Aidrill-Region: bench\\r\\n"
         b"X-Aidrill-Feature-Age: 0.412\\r\\n"
         b"Content-Length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
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
        sock.sendall(reply)  # one write: no Nagle/delayed-ACK stall between header and body
server = StreamServer(("127.0.0.1", 0), serve)
server.start()
print(server.server_port, flush=True)
server.serve_forever()
"""


def start_endpoint() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    return process, f"http://127.0.0.1:{port}"


def locust_rps(
    host: str, work: Path, users: int, seconds: int, listener: bool, workers: int
) -> float:
    golden = work / "golden.json"
    golden.write_text(
        json.dumps(
            {
                "samples": [
                    {"entity": f"e{i}", "features": [0.1, 0.2], "label": "cat"} for i in range(50)
                ]
            }
        )
    )
    prefix = work / f"stats-{listener}-{workers}-{time.monotonic_ns()}"
    env = {
        **os.environ,
        "AIDRILL_GOLDEN_SET": str(golden),
        "AIDRILL_RATE_PER_USER": "10000",  # unthrottled: as fast as each user can go
        "AIDRILL_TIMELINE": str(work / "timeline.jsonl"),
        "AIDRILL_READY_FILE": str(work / "ready"),
        "AIDRILL_BENCH_NO_LISTENER": "" if listener else "1",
    }
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
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
    subprocess.run(base, env={**env, "AIDRILL_LOAD_ROLE": role}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=seconds + 60)  # fmt: skip
    for child in children:
        child.wait(30)
    with open(f"{prefix}_stats.csv") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    return float(rows["Aggregated"]["Requests/s"])


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
    args = parser.parse_args()
    endpoint, host = start_endpoint()
    without: list[float] = []
    with_listener: list[float] = []
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            # Alternate the two so that a slow spell of the machine hits both alike.
            for _ in range(args.repeats):
                without.append(locust_rps(host, work, args.users, args.seconds, False, 0))
                with_listener.append(locust_rps(host, work, args.users, args.seconds, True, 0))
            rows.append(("one process, without aidrill's listener", statistics.median(without)))
            rows.append(("one process, with aidrill's listener", statistics.median(with_listener)))
            for label, workers in (("master + 1 worker, with the listener", 1),
                                   ("master + 2 workers, with the listener", 2)):  # fmt: skip
                rps = locust_rps(host, work, args.users, args.seconds, True, workers)
                rows.append((label, rps))
    finally:
        endpoint.terminate()
        endpoint.wait(10)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.users} users, {args.seconds} s each\n")  # fmt: skip
    print("| load | requests/s |\n|---|---|")
    for label, rps in rows:
        print(f"| {label} | {rps:.0f} |")
    print(f"\nruns without the listener: {', '.join(f'{r:.0f}' for r in without)}")
    print(f"runs with the listener:    {', '.join(f'{r:.0f}' for r in with_listener)}")
    pairs = [w / wo for w, wo in zip(with_listener, without, strict=True)]
    print(
        f"listener overhead ratio (median with / median without): {rows[1][1] / rows[0][1]:.3f}"
        f" (pairwise {', '.join(f'{r:.3f}' for r in pairs)})"
    )
    print(f"merge exact (20,000 samples, 1 vs 4 workers, 100 ms buckets): {merge_is_exact()}")


if __name__ == "__main__":
    main()
