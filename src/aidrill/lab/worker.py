"""One GPU node of the lab: a separate OS process serving the model over HTTP.

The GPU is simulated by a lock held for the node's service time per request, so a
node has a real, finite throughput; a kill of this process is a real crash.
Run as ``python -m aidrill.lab.worker``; it prints ``READY <port>`` once serving and
exits by itself if its supervisor (the parent process) goes away.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from aidrill.lab._http import JsonHandler, QuietServer
from aidrill.lab._model import Model, load_model


def _make_handler(model: Model, region: str, node: str, service_time: float) -> type[JsonHandler]:
    gpu = threading.Lock()

    class NodeHandler(JsonHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                self.send_json(200, {"ok": True, "region": region, "node": node})
            else:
                self.send_json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/predict":
                self.send_json(404, {"error": "not found"})
                return
            try:
                request = self.read_json()
                features = np.asarray(request["features"], dtype=float)
            except (ValueError, KeyError, TypeError):
                self.send_json(400, {"error": "expected {'features': [...]}"})
                return
            with gpu:
                started = time.perf_counter()
                label = int(model.predict(features))
                remaining = service_time - (time.perf_counter() - started)
                if remaining > 0:
                    time.sleep(remaining)
            self.send_json(
                200,
                {"label": label, "region": region, "node": node},
                headers={"X-Aidrill-Region": region},
            )

    return NodeHandler


def _exit_when_orphaned(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="aidrill-lab-worker")
    parser.add_argument("--region", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--service-time", type=float, default=0.08)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    handler = _make_handler(model, args.region, args.node, args.service_time)
    server = QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
