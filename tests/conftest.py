"""Shared fixtures: a live lab on loopback per module, and a check that nothing is left."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
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


_LAB_FIXTURES = {"lab", "lab_state", "quarter_folder"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs a live lab is marked ``lab``, so ``-m "not lab"`` stays fast."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _LAB_FIXTURES or item.get_closest_marker("starts_lab"):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    yield
    left = _descendants()
    assert not left, f"processes left behind by the suite: {sorted(left)}"


@pytest.fixture(scope="module")
def lab_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A live lab for one test module, stopped afterwards with nothing left running."""
    state_dir = tmp_path_factory.mktemp("lab")
    start_lab(state_dir, PLAN)
    try:
        yield state_dir
    finally:
        stop_lab(state_dir)
        assert not _lab_processes(state_dir), "lab processes survived `lab down`"


@pytest.fixture
def lab(lab_state: Path) -> Iterator[LabClient]:
    """The module's lab, reset to nominal before and after each test."""
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
