"""The lab's child processes, started and stopped one way (psutil).

Every server the lab runs in its own process (GPU node workers, S3 emulators, model
registries, redis-server) is a :class:`Child`: started with its stderr in the lab's
log, read for the one line that says it is ready, and killed with nothing left
behind (waited for, its pipe closed).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

__all__ = ["Child"]


class Child:
    """One process the lab started. ``announces``: it writes a ready line to stdout
    (``READY <port> ...``, perhaps after ``WAITING <reason>`` lines)."""

    def __init__(self, argv: Sequence[str], log_path: Path | None, announces: bool = True) -> None:
        log = log_path.open("ab") if log_path is not None else None
        try:
            self.process = psutil.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if announces else subprocess.DEVNULL,
                stderr=log if log is not None else subprocess.DEVNULL,
            )
        finally:
            if log is not None:
                log.close()  # the child holds its own copy

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def ready_line(self, timeout: float, waiting: Callable[[str], None] | None = None) -> list[str]:
        """The words of the first line that is not ``WAITING`` (each of those goes to
        ``waiting``), or ``["TIMEOUT"]`` when none came within ``timeout`` seconds or
        the process closed its output first."""
        found: list[str] = []
        stdout = self.process.stdout
        if stdout is None:
            raise ValueError("this child does not announce itself")

        def read() -> None:
            for raw in stdout:
                words = raw.decode(errors="replace").split()
                if words and words[0] == "WAITING":
                    if waiting is not None:
                        waiting(" ".join(words[1:]))
                    continue
                found.extend(words)
                return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        return list(found) if found else ["TIMEOUT"]

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL, reaped: a killed server is gone, not a zombie, and its pipe closed."""
        with contextlib.suppress(psutil.NoSuchProcess):
            if self.alive:
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, psutil.TimeoutExpired):
            self.process.wait(timeout=timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
