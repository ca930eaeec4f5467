"""Shared fixtures: a live lab on loopback per module, and a check that nothing is left."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

from aidrill.lab import LabClient, start_lab, stop_lab

# CI replays the same examples every time; a developer's run explores new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
PLAN = REPO / "drplan.yaml"


def _descendants() -> set[int]:
    """PIDs of live processes whose ancestry leads back to this test process."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    me = os.getpid()
    found = set()
    for pid in parents:
        cursor, seen = pid, 0
        while cursor in parents and seen < 64:
            cursor = parents[cursor]
            seen += 1
            if cursor == me:
                found.add(pid)
                break
    return found


def _lab_processes(state_dir: Path) -> list[int]:
    """Live processes of the lab in ``state_dir`` (daemon and workers), by command line."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and str(state_dir) in cmdline:
            pids.append(int(entry.name))
    return pids


_LAB_FIXTURES = {"lab", "lab_state", "demo_workspace"}
# The short demo the suite runs end to end (the twelve-drill demo is README's first
# command); test_lab_drills.py checks these two drills on the demo's own runs.
DEMO_DRILLS = ("gpu-node-loss", "feature-store-failover")
# Order: the short demo and the tests that start labs of their own first, then the
# tests on the shared lab (longest first, by these measured seconds per test), then the
# fast tier, and last the checks that only read the demo's runs. README's second
# command runs the fast tier on two xdist workers, then the lab tier in one process (two
# labs on two cores push the drills' p95 over the SLO). With more cores the lab tier
# runs on workers too (pyproject's addopts): a worker holds one lab at a time (its shared
# one, stopped while one of its tests runs a lab of its own; see SessionLab), so two
# cores carry at most two labs. pytest-xdist's `loadgroup` cannot keep tests together
# under pytest 9 (it renames items through an attribute pytest 9 no longer reads), so
# nothing here depends on which worker runs what: the demo runs once behind a lock.
_SECONDS_PER_TEST = {
    "test_lab_drills": 40,
    "test_drills": 37,
    "test_kubernetes": 30,
    "test_pytest_plugin": 32,
    "test_preflight": 28,
    "test_apparatus": 25,
    "test_aws": 25,
    "test_guardrails": 20,
    "test_data_tiers": 15,
    "test_secrets": 15,
}


def _own_labs(item: pytest.Item) -> bool:
    return bool(item.get_closest_marker("starts_lab")) or "demo_workspace" in getattr(
        item, "fixturenames", ()
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs a live lab is marked ``lab``, so ``-m "not lab"`` stays
    fast; the lab tests go out first (the short demo, the other labs of their own, then
    the longest on the shared lab), the fast tests fill in after, and the checks that
    read the demo's runs come last, when the demo is long done."""
    rank: dict[int, tuple[int, int]] = {}
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _LAB_FIXTURES or item.get_closest_marker("starts_lab"):
            item.add_marker(pytest.mark.lab)
            if item.get_closest_marker("reads_the_demo"):
                rank[id(item)] = (3, 0)
            elif _own_labs(item):
                rank[id(item)] = (0, 0 if "demo_workspace" in fixtures else 1)
            else:
                module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
                rank[id(item)] = (1, -_SECONDS_PER_TEST.get(module, 10))
    items.sort(key=lambda item: rank.get(id(item), (2, 0)))  # stable within a rank


# What a test starts to drive a run (and, below it, Locust, canaries, chaos): none of
# it may outlive the test. One that does (a test that failed before it could stop its
# subprocess) would go on injecting faults into the next test's lab.
_DRIVER = re.compile(r"-m aidrill (run|drill|demo)\b|/chaos\b.* run\b|-m pytest\b")


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test() -> Iterator[None]:
    yield
    mine = _descendants()
    drivers = {pid for pid in mine if _DRIVER.search(_cmdline(pid))}
    if not drivers:
        return
    # Each driver with everything below it, found before any is killed (an orphan is
    # no longer a descendant).
    doomed = {pid for pid in mine if _has_ancestor_in(pid, drivers)} | drivers
    for pid in doomed:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    names = sorted(_cmdline(pid)[:80] for pid in drivers)
    raise AssertionError(f"the test left runs behind (killed now): {names}")


def _has_ancestor_in(pid: int, ancestors: set[int]) -> bool:
    cursor, seen = pid, 0
    while seen < 64:
        try:
            stat = (Path("/proc") / str(cursor) / "stat").read_text()
            cursor = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
        if cursor in ancestors:
            return True
        seen += 1
    return False


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    yield
    left = _descendants()
    assert not left, f"processes left behind by the suite: {sorted(left)}"


class SessionLab:
    """The test process's one shared lab, with both twins: started when a test first
    needs it, stopped when a test starts a lab of its own (an idle lab still takes half
    a core, and two labs on two cores starve each other's drills), started again after."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.state_dir: Path | None = None

    def get(self) -> Path:
        if self.state_dir is None:
            self.state_dir = self.factory.mktemp("lab")
            start_lab(self.state_dir, PLAN, twins=("aws", "kubernetes"))
        return self.state_dir

    def release(self) -> None:
        if self.state_dir is not None:
            stopped, self.state_dir = self.state_dir, None
            stop_lab(stopped)
            assert not _lab_processes(stopped), "lab processes survived `lab down`"


@pytest.fixture(scope="session")
def session_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionLab]:
    holder = SessionLab(tmp_path_factory)
    try:
        yield holder
    finally:
        holder.release()


@pytest.fixture
def lab_state(session_lab: SessionLab) -> Path:
    """The shared lab's state directory: the tests that use it do not depend on each
    other's state, and `lab` resets it to nominal around each of them."""
    return session_lab.get()


@pytest.fixture(autouse=True)
def _one_lab_at_a_time(request: pytest.FixtureRequest, session_lab: SessionLab) -> None:
    if _own_labs(request.node):
        session_lab.release()


@pytest.fixture
def lab(lab_state: Path) -> Iterator[LabClient]:
    """The shared lab, reset to nominal before and after each test."""
    client = LabClient(lab_state)
    assert client.reset()["restored"]
    yield client
    client.reset()


def copy_shipped_files(root: Path) -> None:
    """Put the shipped plan, experiments and probes into ``root``."""
    for name in ("drplan.yaml", "experiments", "probes"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy(source, root / name)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding the shipped plan, experiments and probes."""
    copy_shipped_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory, session_lab: SessionLab) -> Path:
    """`aidrill demo` run once, on a plan whose lab suite is DEMO_DRILLS: its own lab,
    both drills, the run pages, the quarter's report; the workspace it left. Once for
    the whole session: under xdist the first worker to need it runs it (holding a lock
    in the session's shared temporary folder) and the others read what it left."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the folder every worker's own one is in
    root = shared / "demo"
    with (shared / "demo.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "demo.out").exists():
            session_lab.release()
            _run_the_short_demo(root)
    return root


def _run_the_short_demo(root: Path) -> None:
    root.mkdir()
    copy_shipped_files(root)
    plan = yaml.safe_load((root / "drplan.yaml").read_text())
    plan["suites"]["lab"] = [f"experiments/lab/{name}.yaml" for name in DEMO_DRILLS]
    (root / "drplan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    done = subprocess.run(
        [sys.executable, "-m", "aidrill", "demo", "--no-live"],
        cwd=root,
        env={**os.environ, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    (root / "demo.out").write_text(f"exit {done.returncode}\n{done.stdout}\n{done.stderr}")
