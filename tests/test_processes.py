"""Which processes are alive, read with psutil: a zombie is not alive, a live member
keeps its process group alive, a vanished one does not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from aidrill.lab.control._client import _any_live_member
from aidrill.run._aborted import _not_zombie


def _wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_group_is_alive_while_a_member_runs_and_a_zombie_is_not() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        group = os.getpgid(child.pid)
        assert _any_live_member(group) and _not_zombie(child.pid)
        os.kill(child.pid, signal.SIGKILL)  # not reaped yet: a zombie
        assert _wait_for(lambda: not _not_zombie(child.pid)), "a zombie is not a live run"
        assert not _any_live_member(group), "a group of zombies is not alive"
    finally:
        child.kill()
        child.wait(timeout=10)
    assert not _not_zombie(child.pid), "a process that is gone is not alive"


def test_a_lab_child_reports_waiting_then_ready_and_is_reaped_when_killed(tmp_path) -> None:
    from aidrill.lab._process import Child

    script = "import time; print('WAITING the model', flush=True); print('READY 4242 v1', flush=True); time.sleep(60)"  # noqa: E501
    child = Child([sys.executable, "-c", script], tmp_path / "child.log")
    waited: list[str] = []
    try:
        assert child.ready_line(10.0, waited.append) == ["READY", "4242", "v1"]
        assert waited == ["the model"]
        assert child.alive and _not_zombie(child.pid)
    finally:
        child.kill()
    assert not child.alive and not _not_zombie(child.pid), "killed and reaped, not a zombie"


def test_a_lab_child_that_never_announces_times_out_and_dies(tmp_path) -> None:
    from aidrill.lab._process import Child

    child = Child(
        [
            sys.executable,
            "-c",
            "import sys, time; print('boom', file=sys.stderr, flush=True); time.sleep(60)",
        ],
        tmp_path / "c.log",
    )
    try:
        assert child.ready_line(0.5) == ["TIMEOUT"]
    finally:
        child.kill()
    assert not _not_zombie(child.pid)
    assert "boom" in (tmp_path / "c.log").read_text(), "its stderr goes to the lab's log"
    closed = Child([sys.executable, "-c", "pass"], None)
    assert closed.ready_line(10.0) == ["TIMEOUT"], "output closed without a line"
    closed.kill()
