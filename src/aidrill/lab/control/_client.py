"""Starting, stopping and talking to a lab through its state directory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from aidrill._event import ActivityRecord
from aidrill._json import Json, JsonObject
from aidrill.errors import LabError, LabNotRunningError
from aidrill.lab._http import get_json, post_json
from aidrill.lab._records import (
    CapacityReply,
    DataReply,
    Event,
    FaultEntry,
    LabJson,
    LabStatus,
    RegionSnapshot,
    TwinInfo,
    checked,
    checked_list,
)
from aidrill.lab.control._ledger import read_entries

DEFAULT_STATE_DIR = Path(".aidrill")
TWINS = ("aws", "kubernetes")  # the cloud twins a lab can start beside itself
# glibc's allocator, for the lab and every process it starts (read at each one's start;
# other C libraries ignore it). The lab moves snapshots and artifacts of several MiB
# through short-lived buffers: by default glibc raises its mmap threshold once such a
# buffer is freed, so later ones come from arenas that keep the memory after it is
# freed. A fixed 1 MiB threshold gives every large buffer back when it is freed (issue
# 26: benchmarks/README.md, "The lab's resident memory"). MALLOC_ARENA_MAX=2 was tried
# beside it: no memory saved, and the only demo run with it slowed as it went.
_ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
STATE_DIR_ENV = "AIDRILL_STATE_DIR"


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


@dataclass(frozen=True)
class LabInfo:
    pid: int
    control_port: int
    router_port: int
    topology: str
    primary: str
    dr: str
    regions: dict[str, int]
    golden_set: Path
    nominal_capacity: int
    storage: dict[str, int] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    features_port: int | None = None
    feature_region_ports: dict[str, int] = field(default_factory=dict)
    index_ports: dict[str, int] = field(default_factory=dict)
    index_queries: Path | None = None
    pipelines_port: int | None = None
    registry_ports: dict[str, int] = field(default_factory=dict)
    registry_model: str | None = None  # name@alias the GPU nodes resolve
    aws: TwinInfo = field(default_factory=lambda: TwinInfo())
    kubernetes: TwinInfo = field(default_factory=lambda: TwinInfo())

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"


@dataclass(frozen=True)
class Capacity:
    """The lab's ``/capacity`` reply: what serves at once against what it should, and
    every fault in its ledger (each entry as the ledger keeps it)."""

    at_capacity: bool
    serving_capacity: int
    nominal_capacity: int
    faults: list[FaultEntry]

    def to_record(self) -> CapacityReply:
        return {
            "at_capacity": self.at_capacity,
            "serving_capacity": self.serving_capacity,
            "nominal_capacity": self.nominal_capacity,
            "faults": list(self.faults),
        }

    @classmethod
    def from_record(cls, record: Json) -> Capacity:
        reply = checked(CapacityReply, record, "lab control /capacity")
        return cls(
            reply["at_capacity"], reply["serving_capacity"], reply["nominal_capacity"],
            reply["faults"],
        )  # fmt: skip


def _object(body: Json, path: str) -> JsonObject:
    if not isinstance(body, dict):
        raise LabError(f"lab control {path} answered {type(body).__name__}, not an object")
    return body


class LabClient:
    """The control API of a running lab."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir or default_state_dir()
        self.info = read_lab_info(self.state_dir)

    def _get(self, path: str, timeout: float = 5.0) -> Json:
        try:
            status, body = get_json("127.0.0.1", self.info.control_port, path, timeout)
        except OSError as exc:
            raise LabNotRunningError(f"the lab in {self.state_dir} does not answer: {exc}") from exc
        if status != 200:
            raise LabError(f"lab control {path} answered {status}: {body}")
        answer: Json = body
        return answer

    def _post(self, path: str, payload: JsonObject, timeout: float = 300.0) -> Json:
        try:
            status, body = post_json("127.0.0.1", self.info.control_port, path, payload, timeout)
        except OSError as exc:
            raise LabNotRunningError(f"the lab in {self.state_dir} does not answer: {exc}") from exc
        if status != 200:
            message = body.get("error") if isinstance(body, dict) else body
            raise LabError(f"lab control {path} refused: {message}")
        answer: Json = body
        return answer

    def status(self) -> LabStatus:
        """Capacity, the fault ledger, the router, every region and the data tiers."""
        status: LabStatus = checked(LabStatus, self._get("/status"), "lab control /status")
        return status

    def capacity(self) -> Capacity:
        """Serving capacity and the active faults, without the data tiers' checks."""
        return Capacity.from_record(self._get("/capacity"))

    def balancers(self) -> list[RegionSnapshot]:
        """Each region's balancer: its nodes, their ports and whether it rotates them."""
        body = self._get("/balancers", timeout=2.0)
        regions: list[RegionSnapshot] = checked_list(RegionSnapshot, body, "lab control /balancers")
        return regions

    def data(self) -> DataReply:
        """The data tiers as the lab reports them, with the regions now serving."""
        reply: DataReply = checked(DataReply, self._get("/data"), "lab control /data")
        return reply

    def problems(self) -> list[str]:
        """What keeps the lab from its nominal state (empty when it is nominal)."""
        found = _object(self._get("/nominal"), "/nominal").get("problems")
        return [str(p) for p in found] if isinstance(found, list) else []

    def activities(self, since: float = 0.0) -> list[ActivityRecord]:
        """The region supervisors' activities (launches, and what failed and why), as
        the lab's control API shows them to any operator."""
        body = self._get(f"/activities?since={since}")
        found: list[ActivityRecord] = checked_list(ActivityRecord, body, "lab control /activities")
        return found

    def ground_truth(self, since: float = 0.0) -> list[Event]:
        body = self._get(f"/ground-truth?since={since}")
        found: list[Event] = checked_list(Event, body, "lab control /ground-truth")
        return found

    def call(self, path: str, **payload: Json) -> JsonObject:
        return _object(self._post(path, payload), path)

    def reset(self) -> JsonObject:
        return self.call("/reset")

    def twin_env(self, twin: str = "aws") -> dict[str, str]:
        """The environment that points AWS clients, Kubernetes clients and aidrill at
        the lab's twins; ``AIDRILL_PLAN`` names the plan for drilling ``twin``."""
        aws, kube = self.info.aws, self.info.kubernetes
        wanted = kube if twin == "kubernetes" else aws
        if wanted.get("missing"):
            raise LabError(str(wanted["missing"]))
        plan = wanted.get("plan", "")
        return {**aws.get("env", {}), **kube.get("env", {}), "AIDRILL_PLAN": str(plan)}


def read_fault_ledger(state_dir: Path) -> list[FaultEntry]:
    """Faults recorded in a state directory's ledger, whether or not its lab runs."""
    return read_entries(state_dir / "faults.json")


def read_lab_info(state_dir: Path) -> LabInfo:
    path = state_dir / "lab.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabNotRunningError(
            f"no lab is running in {state_dir} (start one with `aidrill lab up`)"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise LabError(f"cannot read {path}: {exc}") from exc
    lab = checked(LabJson, raw, f"{path}")
    return LabInfo(
        pid=lab["pid"],
        control_port=lab["control_port"],
        router_port=lab["router_port"],
        topology=lab["topology"],
        primary=lab["primary"],
        dr=lab["dr"],
        regions=lab["regions"],
        golden_set=Path(lab["golden_set"]),
        nominal_capacity=lab["nominal_capacity"],
        storage=lab["storage"],
        buckets=lab["buckets"],
        features_port=lab["features_port"],
        feature_region_ports=lab["feature_region_ports"],
        index_ports=lab["index_ports"],
        index_queries=Path(lab["index_queries"]),
        pipelines_port=lab["pipelines_port"],
        registry_ports=lab["registry_ports"],
        registry_model=lab["registry_model"],
        aws=lab["aws"],
        kubernetes=lab["kubernetes"],
    )


def start_lab(
    state_dir: Path,
    plan_path: Path,
    topology: str | None = None,
    timeout: float = 60.0,
    twins: Sequence[str] = (),
) -> LabClient:
    """Start the lab in the background and return once it serves at full capacity;
    ``twins``: which of its cloud twins (``aws``, ``kubernetes``) to start beside it."""
    unknown = sorted(set(twins) - set(TWINS))
    if unknown:
        raise LabError(f"unknown twin {', '.join(unknown)}: the lab has {', '.join(TWINS)}")
    with contextlib.suppress(LabNotRunningError):
        client = LabClient(state_dir)
        with contextlib.suppress(LabNotRunningError):
            client.status()
            raise LabError(f"a lab is already running in {state_dir} (pid {client.info.pid})")
        (state_dir / "lab.json").unlink(missing_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "logs").mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "aidrill.lab.control._daemon",
        "--detach",
        "--state",
        str(state_dir),
        "--plan",
        str(plan_path),
    ]
    if topology:
        command += ["--topology", topology]
    if twins:
        command += ["--twins", ",".join(sorted(set(twins)))]
    pid_file = state_dir / "daemon.pid"
    pid_file.unlink(missing_ok=True)
    log_path = state_dir / "logs" / "lab.log"
    with log_path.open("ab") as log:
        launcher = subprocess.run(
            command,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env={**_ALLOCATOR, **os.environ},  # the caller's own settings win
            check=False,
            timeout=timeout,
        )
    if launcher.returncode != 0:
        raise LabError(f"the lab could not start (code {launcher.returncode}); see {log_path}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        daemon_pid = _read_pid(pid_file)
        if daemon_pid is not None and not _group_alive(daemon_pid):
            raise LabError(f"the lab exited during start; see {log_path}")
        with contextlib.suppress(LabNotRunningError, LabError):
            client = LabClient(state_dir)
            if client.capacity().at_capacity:
                return client
        time.sleep(0.1)
    daemon_pid = _read_pid(pid_file)
    if daemon_pid is not None:
        _kill_group(daemon_pid)
    raise LabError(
        f"the lab did not become healthy within {timeout:.0f}s; "
        f"see {state_dir / 'logs' / 'lab.log'}"
    )


def stop_lab(state_dir: Path, timeout: float = 15.0) -> bool:
    """Stop the lab and every process it started; False when none was running."""
    try:
        info = read_lab_info(state_dir)
    except LabNotRunningError:
        return False
    with contextlib.suppress(OSError):
        post_json("127.0.0.1", info.control_port, "/shutdown", {}, timeout=5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(info.pid):
        time.sleep(0.1)
    _kill_group(info.pid)
    (state_dir / "lab.json").unlink(missing_ok=True)
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie group leader still answers; reap it if it is our child.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    return _any_live_member(pgid)


def _any_live_member(pgid: int) -> bool:
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (psutil.Error, OSError):
            continue  # gone while we looked
    return False


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
