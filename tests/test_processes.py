"""Which processes are alive, read with psutil: a zombie is not alive, a live member
keeps its process group alive, a vanished one does not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from aidrill.lab._client import _any_live_member
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
