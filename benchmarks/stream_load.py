"""Benchmark: what aidrill's reading of streamed answers costs the load, against the
bare Locust loop.

    python benchmarks/stream_load.py [--seconds 15] [--users 20] [--tokens 64] [--repeats 3]

A minimal keep-alive HTTP server (gevent, its own process) answers every
``POST /v1/chat/completions`` with a streamed OpenAI-style answer of ``--tokens``
server-sent events (chunked, one write per answer, so what is measured is the load
side). Two Locust runs against it, each unthrottled with the same users:

- *aidrill*: its locustfile with ``protocol: openai-chat, stream: true``: every event
  timed as it arrives (time to first token, inter-token gaps, tokens/s), the text
  joined and scored, the answer counted into its bucket;
- *bare*: a locustfile of a FastHttpUser that posts the same body and reads the same
  stream to its end, line by line, and does nothing else.

It prints answers/s of each, their ratio (issue 27's goal: at least 0.9 of bare) and
the Locust process's CPU time per answer. On two or more cores the server and Locust
are pinned to different cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "src"))
os.environ["PYTHONPATH"] = str(REPO / "src")

from load_scale import ALL_CPUS, SERVE_REPLY, locust_rps, pin  # noqa: E402

SERVER_SETUP = """
import json, socket, sys
from gevent.server import StreamServer
tokens = int(sys.argv[1])
events = b"".join(
    b"data: " + json.dumps({"id": "x", "choices": [{"index": 0, "delta": {"content": w}}]}).encode()
    + b"\\n\\n" for w in ["Paris "] + ["tok "] * (tokens - 1)
) + b'data: {"id": "x", "choices": [], "usage": {"completion_tokens": %d}}\\n\\n' % tokens
events += b"data: [DONE]\\n\\n"
chunk = b"%x\\r\\n" % len(events) + events + b"\\r\\n0\\r\\n\\r\\n"
reply = (b"HTTP/1.1 200 OK\\r\\nContent-Type: text/event-stream\\r\\n"
         b"Transfer-Encoding: chunked\\r\\n\\r\\n" + chunk)
"""

BARE = """
from locust import FastHttpUser, constant_throughput, task

BODY = {body!r}


class Bare(FastHttpUser):
    wait_time = constant_throughput(10000)

    @task
    def ask(self):
        with self.client.request("POST", "/v1/chat/completions", data=BODY, stream=True,
                                 catch_response=True, name="infer",
                                 headers={{"Content-Type": "application/json"}}) as response:
            raw = response._response
            while raw.readline(b"\\n"):
                pass
            response.success()
"""


def main() -> None:
    import subprocess

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    command = [sys.executable, "-c", SERVER_SETUP + SERVE_REPLY, str(args.tokens)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    host = f"http://127.0.0.1:{server.stdout.readline().strip()}"
    cores = sorted(ALL_CPUS)
    locust_cpus = {cores[-1]} if len(cores) >= 2 else None
    if len(cores) >= 2:
        pin(server.pid, {cores[0]})
    protocol = {"kind": "openai-chat", "model": "bench", "stream": True, "max_tokens": 64}
    sample = {"prompt": "What is the capital of France?",
              "expect": {"scorer": "contains", "value": "Paris"}}  # fmt: skip
    body = json.dumps({"model": "bench", "max_tokens": 64, "temperature": 0.0, "seed": 0,
                       "stream": True, "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": sample["prompt"]}]})  # fmt: skip
    figures: dict[str, list[tuple[float, float]]] = {"aidrill": [], "bare": []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            bare = work / "bare_locustfile.py"
            bare.write_text(BARE.format(body=body))
            golden = {"samples": [sample] * 20}
            os.environ["AIDRILL_PROTOCOL"] = json.dumps(protocol)
            for _ in range(args.repeats):
                for name in ("aidrill", "bare"):
                    locustfile = None if name == "aidrill" else bare
                    figures[name].append(locust_rps(
                        host, work, args.users, args.seconds, listener=True, workers=0,
                        cpus=locust_cpus, golden_set=golden, locustfile=locustfile,
                    ))  # fmt: skip
    finally:
        server.kill()
        server.wait()
    rows = {n: (statistics.median(r for r, _ in f), statistics.median(c for _, c in f))
            for n, f in figures.items()}  # fmt: skip
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"{machine}; {args.users} users, {args.seconds} s x {args.repeats}, {args.tokens} tokens")
    print("| load | answers/s (median) | CPU per answer (us) |")
    print("|---|---|---|")
    for name, (rps, cpu) in rows.items():
        print(f"| {name} | {rps:.0f} | {cpu:.0f} |")
    print(f"ratio aidrill / bare: {rows['aidrill'][0] / rows['bare'][0]:.2f}")


if __name__ == "__main__":
    main()
