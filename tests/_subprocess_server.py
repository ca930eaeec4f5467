"""A server nobody here wrote, started as a subprocess on a free loopback port for a
test module: its log kept beside it, ready when ``ready(url)`` says so, stopped after."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def answers_get(path: str) -> Callable[[str], bool]:
    """A readiness check: the server at a URL answers ``GET {path}`` with 200."""

    def ready(url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=1) as reply:
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    return ready


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(
    command: list[str],
    port: int,
    cwd: Path,
    log_path: Path,
    ready: Callable[[str], bool],
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """The server ``command`` starts (listening on ``port``, with ``env`` added to this
    process's environment), its URL once ready."""
    environment = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not ready(url):
            assert server.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def load_until(generator: Any, run_dir: Path, answers: int, timeout: float = 30) -> list[Any]:
    """Run ``generator`` (a LoadGenerator writing into ``run_dir``) until its timeline
    holds ``answers`` inference answers or ``timeout`` passes; its buckets after."""
    from aidrill import _evidence as evidence

    generator.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if sum(b.requests for b in evidence.read_timeline(run_dir)) >= answers:
                break
    finally:
        generator.stop()
    return evidence.read_timeline(run_dir)
