"""Runs killed mid-fault: found through the fault ledger, marked aborted in their evidence."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import psutil

from aidrill import _evidence as evidence
from aidrill._event import Event
from aidrill._manifest import MANIFEST
from aidrill._signing import seal_run
from aidrill.errors import DrillError
from aidrill.measure import GROUND_TRUTH_PREFIX
from aidrill.run._results import write_run_page, write_run_result
from aidrill.targets import LeftFault

logger = logging.getLogger(__name__)


def owner_alive(fault: LeftFault) -> bool:
    """Whether the process that injected ``fault`` still runs (and is not this one)."""
    pid = fault.pid
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # cannot tell: a run that may be alive keeps its faults


GroundTruth = Callable[[float], list[Event]]


def log_ground_truth(log: evidence.EventLog, records: list[Event]) -> None:
    """The target's own record of events into a run's event log, each under the
    ground-truth prefix, at the time it happened."""
    for record in records:
        fields = {k: v for k, v in record.items() if k not in ("time", "kind")}
        log.append(f"{GROUND_TRUTH_PREFIX}{record['kind']}", when=record["time"], **fields)


def mark_runs_aborted(
    faults: list[LeftFault], reason: str, ground_truth: GroundTruth | None = None
) -> list[Path]:
    """Record in each owning run directory that the run was aborted; return those dirs.
    ``ground_truth(since)`` is the target's own record of events, where it keeps one."""
    by_run: dict[str, list[LeftFault]] = {}
    for fault in faults:
        if fault.run_dir:
            by_run.setdefault(fault.run_dir, []).append(fault)
    marked = []
    for directory, owned in sorted(by_run.items()):
        run_dir = Path(directory)
        if not run_dir.is_dir():
            logger.warning("run directory %s of a cleared fault is gone", run_dir)
            continue
        try:
            _mark_one(run_dir, owned, reason, ground_truth)
        except DrillError as exc:
            logger.error("could not mark %s aborted: %s", run_dir, exc)
            continue
        marked.append(run_dir)
    return marked


def _mark_one(
    run_dir: Path, faults: list[LeftFault], reason: str, ground_truth: GroundTruth | None
) -> None:
    stop_orphan_load(run_dir)
    log = evidence.EventLog(run_dir / evidence.EVENTS_FILE)
    try:
        events = evidence.read_events(run_dir)
        started = next((e.time for e in events if e.kind == "run_started"), None)
        if (
            ground_truth is not None
            and started is not None
            and not any(e.kind.startswith(GROUND_TRUTH_PREFIX) for e in events)
        ):
            log_ground_truth(log, ground_truth(started))
        log.append(
            "run_aborted",
            reason=reason,
            faults=[{"kind": f.kind, "region": f.region} for f in faults],
        )
    finally:
        log.close()
    if not (run_dir / evidence.RESULT_FILE).exists():
        write_run_result(run_dir, "aborted", False, reason)
    if not (run_dir / evidence.REPORT_FILE).exists():
        write_run_page(run_dir)
    if not (run_dir / MANIFEST).exists():
        seal_run(run_dir)


def stop_orphan_load(run_dir: Path) -> None:
    """A killed run leaves its Locust behind; stop it by the pid it recorded."""
    try:
        pid = int((run_dir / evidence.LOAD_PID_FILE).read_text())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
