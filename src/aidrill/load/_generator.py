"""The one adapter that owns Locust: a subprocess, its settings and its lifetime.

Locust runs in its own process because importing it monkey-patches the interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aidrill import _evidence as evidence
from aidrill._apparatus import ApparatusPart, process_check
from aidrill._http import HttpSettings
from aidrill.errors import LoadError
from aidrill.load._profile import SEARCH_USERS, LoadProfile
from aidrill.plan import ProtocolSettings

WORKERS_FILE = "load-workers.jsonl"

_LOCUSTFILE = Path(__file__).with_name("locustfile.py")
_SERIES = ("inference", "search")
# Locust's own run time outlasts the run's maximum duration by this much, so the run's
# duration guardrail (which rolls back) stops a run that long before its eyes close.
_RUN_TIME_MARGIN = 5.0


class LoadGenerator:
    """Starts Locust against ``host`` and stops it; the run time is always bounded."""

    def __init__(
        self,
        host: str,
        golden_set: Path,
        run_dir: Path,
        profile: LoadProfile,
        max_duration: float,
        index_queries: Path | None = None,
        http: HttpSettings | None = None,
        protocol: ProtocolSettings | None = None,
        vector_store: Mapping[str, Any] | None = None,
    ) -> None:
        self.host = host
        # The vector database the searches ask (its connection string resolved; it
        # travels in the load's environment, never into evidence), else POST /search.
        self.vector_store = vector_store
        self.http = http or HttpSettings()
        self.protocol = protocol or ProtocolSettings()
        self.index_queries = index_queries
        self.golden_set = golden_set
        self.timeline = run_dir / "timeline.jsonl"
        self.ready_file = run_dir / ".load-ready"
        self.log_path = run_dir / "load.log"
        self.workers_path = run_dir / WORKERS_FILE
        self.run_dir = run_dir
        self.profile = profile
        self.max_duration = max_duration
        self._process: subprocess.Popen[bytes] | None = None
        self._workers: list[subprocess.Popen[bytes]] = []

    def start(self, ready_timeout: float = 60.0) -> None:
        self.ready_file.unlink(missing_ok=True)
        env = {
            **os.environ,
            "AIDRILL_GOLDEN_SET": str(self.golden_set),
            "AIDRILL_RATE_PER_USER": str(self.profile.rate_per_user),
            "AIDRILL_REQUEST_TIMEOUT": str(self.profile.request_timeout),
            "AIDRILL_BUCKET_SECONDS": str(self.profile.bucket),
            "AIDRILL_TIMELINE": str(self.timeline),
            "AIDRILL_READY_FILE": str(self.ready_file),
            "AIDRILL_WORKERS_FILE": str(self.workers_path),
            "AIDRILL_PROTOCOL": self.protocol.model_dump_json(),
            **self.http.for_subprocess(),
        }
        if self.index_queries is not None:
            env["AIDRILL_INDEX_QUERIES"] = str(self.index_queries)
        if self.vector_store is not None:
            env["AIDRILL_VECTOR_STORE"] = json.dumps(dict(self.vector_store))
        # Search users come on top of the profile's inference users (see the locustfile).
        users = str(self.profile.users + (SEARCH_USERS if self.index_queries else 0))
        command = [
            sys.executable, "-m", "locust", "-f", str(_LOCUSTFILE), "--headless",
            "-u", users, "-r", users,
            "--run-time", f"{max(1, round(self.max_duration + _RUN_TIME_MARGIN))}s",
            "--host", self.host,
            "--stop-timeout", "2", "--only-summary", "--exit-code-on-error", "0",
            "--loglevel", "WARNING",
        ]  # fmt: skip
        workers = self.profile.workers
        port = _free_port() if workers else 0
        if workers:
            command += [
                "--master", "--expect-workers", str(workers),
                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            ]  # fmt: skip
        role = "master" if workers else "local"
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env={**env, "AIDRILL_LOAD_ROLE": role},
                start_new_session=True,
            )
            worker_env = {k: v for k, v in env.items() if k != "AIDRILL_READY_FILE"}
            worker_command = [
                sys.executable, "-m", "locust", "-f", str(_LOCUSTFILE), "--worker",
                "--master-host", "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING",
            ]  # fmt: skip
            for _ in range(workers):
                worker = subprocess.Popen(
                    worker_command,
                    stdout=log,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    env={**worker_env, "AIDRILL_LOAD_ROLE": "worker"},
                    start_new_session=True,
                )
                self._workers.append(worker)
        (self.run_dir / evidence.LOAD_PID_FILE).write_text(str(self._process.pid))
        deadline = time.monotonic() + ready_timeout
        while not self.ready_file.exists():
            if self._process.poll() is not None:
                raise LoadError(
                    f"Locust exited at start (code {self._process.returncode}); see {self.log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise LoadError(
                    f"Locust did not start within {ready_timeout:.0f}s; see {self.log_path}"
                )
            time.sleep(0.05)
        self.ready_file.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def parts(self) -> list[ApparatusPart]:
        """Locust's processes as parts of the run's apparatus: the single process (or
        the master) is the run's eyes; a worker only feeds part of the answers, and the
        master's own count of workers it still hears from says when one went quiet."""
        if self._process is None:
            return []
        name = "the load generator's master" if self._workers else "the load generator"
        found = [ApparatusPart(name, _SERIES, process_check(self._process), fatal=True)]
        found += [
            ApparatusPart(f"load worker {number}", _SERIES, process_check(worker))
            for number, worker in enumerate(self._workers, start=1)
        ]
        if self._workers:
            found.append(ApparatusPart("a load worker", _SERIES, self._missing_workers))
        return found

    def _missing_workers(self) -> str | None:
        """Locust's master marks a worker missing after three seconds without its
        heartbeat; it writes what it counts to ``load-workers.jsonl`` every second."""
        try:
            lines = self.workers_path.read_bytes().splitlines()
            latest = json.loads(lines[-1]) if lines else {}
        except (OSError, ValueError):
            return None
        missing = int(latest.get("missing") or 0)
        if missing == 0:
            return None
        return f"went missing: Locust's master lost the heartbeat of {missing} worker(s)"

    def stop(self, timeout: float = 20.0) -> int | None:
        """Ask Locust to quit (SIGTERM flushes the last buckets; a master first asks its
        workers for their last reports); kill whatever hangs."""
        process = self._process
        if process is None:
            return None
        try:
            return self._stop(process, timeout)
        finally:
            for worker in self._workers:
                _end(worker, timeout=10.0)
            self._workers = []

    def _stop(self, process: subprocess.Popen[bytes], timeout: float) -> int | None:
        if process.poll() is not None:
            # A master that died cannot tell its workers to quit: stop them now.
            for worker in self._workers:
                with contextlib.suppress(ProcessLookupError):
                    worker.send_signal(signal.SIGTERM)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        return process.returncode


def _end(process: subprocess.Popen[bytes], timeout: float) -> None:
    """A worker normally quits when its master does; one that does not is stopped."""
    try:
        process.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
