"""The feature store's canary writer: its own process, one sequence-numbered write every
100 ms to the primary endpoint, each appended to ``canary.jsonl`` as it is answered.

A process of its own, like the load: it can die (an OOM kill, a crash) apart from the
run, and the run watches it (``aidrill.run``: a writer that exits is recorded, and the
RPO it feeds is *not measured* from that moment). Each record carries the time the
write was sent (``time``) and the time its answer came (``acked``): a write answered
before an audit read the store back was applied before that read (one Redis server
applies commands in the order it answers them), so the audit needs no lock with it.

Usage (started by :class:`aidrill.targets.TierObserver`)::

    python -m aidrill.targets._canary_writer HOST PORT KEY OUT SECONDS
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

INTERVAL = 0.1
TIMEOUT = 0.3


class CanaryWriter:
    """The writer's process, seen from the run: start, watch, stop."""

    def __init__(self, host: str, port: int, key: str, out: Path, seconds: float) -> None:
        self.out = out
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, host, str(port), key, str(out), f"{seconds:.1f}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self._process

    def wait(self, timeout: float) -> int | None:
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int | None:
        if self._process.poll() is None:
            self._process.terminate()
        if self.wait(5.0) is None:
            self._process.kill()
            self._process.wait(5.0)
        return self._process.returncode


def _write_forever(host: str, port: int, key: str, out: Path, seconds: float) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(
        host=host,
        port=port,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
    parent = os.getppid()
    deadline = time.monotonic() + seconds
    seq = 0
    next_at = time.monotonic()
    with out.open("a", encoding="utf-8") as log:
        # An orphan stops: a killed run must not leave writes going to the store.
        while time.monotonic() < deadline and os.getppid() == parent:
            seq += 1
            started = time.time()
            try:
                client.zadd(key, {str(seq): seq})
                ok = True
            except (redis.RedisError, OSError, ValueError):
                ok = False
            acked = time.time()
            record = {"seq": seq, "time": round(started, 4), "acked": round(acked, 4), "ok": ok}
            log.write(json.dumps(record) + "\n")
            log.flush()
            next_at += INTERVAL
            time.sleep(max(0.0, next_at - time.monotonic()))


def _quit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _quit)
    host, port, key, out, seconds = sys.argv[1:6]
    _write_forever(host, int(port), key, Path(out), float(seconds))
