"""The one adapter that owns Locust: a subprocess, its settings and its lifetime.

Locust runs in its own process because importing it monkey-patches the interpreter.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aidrill import _evidence as evidence
from aidrill.errors import LoadError

_LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class LoadProfile:
    users: int = 10
    rate_per_user: float = 3.0
    request_timeout: float = 2.0
    bucket: float = 1.0
    workers: int = 0  # 0: one Locust process; N: Locust's master and N workers


_SEARCH_USERS = 2  # SEARCH_USERS in the locustfile, which only Locust's process imports


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
    ) -> None:
        self.host = host
        self.index_queries = index_queries
        self.golden_set = golden_set
        self.timeline = run_dir / "timeline.jsonl"
        self.ready_file = run_dir / ".load-ready"
        self.log_path = run_dir / "load.log"
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
        }
        if self.index_queries is not None:
            env["AIDRILL_INDEX_QUERIES"] = str(self.index_queries)
        # Search users come on top of the profile's inference users (see the locustfile).
        users = str(self.profile.users + (_SEARCH_USERS if self.index_queries else 0))
        command = [
            sys.executable, "-m", "locust", "-f", str(_LOCUSTFILE), "--headless",
            "-u", users, "-r", users,
            "--run-time", f"{max(1, round(self.max_duration))}s",
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
