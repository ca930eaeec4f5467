"""One lab region: GPU nodes, their supervisor/autoscaler and the regional load balancer."""

from __future__ import annotations

import collections
import http.client
import itertools
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aidrill._event import ActivityRecord, activity_record
from aidrill._json import JsonObject
from aidrill.lab._http import JsonHandler, QuietServer, UpstreamPool, get_json, post_json
from aidrill.lab._process import Child
from aidrill.lab._records import RegionSnapshot
from aidrill.lab.serving._node_faults import NodeFault
from aidrill.lab.serving._outliers import OutlierEjection
from aidrill.plan import LabSettings

Record = Callable[..., None]
_BOOT_TIMEOUT = 15.0
# With outlier ejection on, a node out of rotation this long is replaced, as an Auto
# Scaling group whose health check type is the load balancer's replaces an instance.
_REPLACE_EJECTED_AFTER = 2.0


@dataclass
class Node:
    name: str
    process: Child
    port: int = 0
    healthy: bool = False
    model_version: str | None = None  # the registry version it serves (its health check)
    inflight: int = 0
    pool: UpstreamPool | None = None

    @property
    def alive(self) -> bool:
        return self.process.alive


@dataclass
class RegionState:
    """Mutable state of a region, guarded by ``Region.lock``."""

    desired: int
    failed: bool = False
    capacity_exhausted: bool = False
    nodes: dict[str, Node] = field(default_factory=dict)
    provisioning: int = 0
    refusal_reported: bool = False
    launch_suspended: bool = False  # the twin's Auto Scaling group has Launch suspended
    room: int | None = None  # GPU nodes the Kubernetes twin can place a pod on now


class Region:
    """Supervisor (autoscaler with GPU quota and provisioning delay) and balancer."""

    def __init__(
        self,
        name: str,
        settings: LabSettings,
        worker_args: list[str],
        log_dir: Path,
        desired: int,
        record: Record,
    ) -> None:
        self.name = name
        self.settings = settings
        self.worker_args = worker_args
        self.index_port: int | None = None
        self._index_pool: UpstreamPool | None = None
        self.log_dir = log_dir
        self.record = record
        self.lock = threading.Lock()
        self.state = RegionState(desired=desired)
        # The supervisor's activities as its API shows them (an Auto Scaling group's
        # activity history): what it launched, and what failed and why.
        self._activities: collections.deque[ActivityRecord] = collections.deque(maxlen=500)
        self._activity_lock = threading.Lock()  # never held with ``lock``
        self._serial = itertools.count(1)
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.ejection: OutlierEjection | None = None  # off unless switched on
        self.server = QuietServer(("127.0.0.1", 0), _balancer_handler(self))
        self.port = self.server.server_address[1]

    # -- activities (the supervisor's own API) ------------------------------------
    def _activity(
        self,
        status: str,
        node: str | None = None,
        cause: str = "",
        action: str | None = None,
        kind: str = "launch",
        step: str | None = None,
    ) -> None:
        """One entry of the region's activity API: the supervisor's launches (``kind``
        launch, what an Auto Scaling group lists), and what its balancer and nodes did
        (``balancer``, ``node``), each with the recovery ``step`` it marks."""
        if action is None:
            action = f"launch GPU node {node}" if node else "launch a GPU node"
            step = step or ("detect" if status == "started" else None)
        with self._activity_lock:
            self._activities.append(activity_record(kind, self.name, action, cause, status, step))

    def activities(self, since: float, kinds: tuple[str, ...] = ()) -> list[ActivityRecord]:
        """The activities since ``since`` (only those of ``kinds``, where given)."""
        with self._activity_lock:
            return [
                ActivityRecord(**a)
                for a in self._activities
                if a["time"] >= since and (not kinds or a["kind"] in kinds)
            ]

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Boot the region's nominal nodes at once (no provisioning delay), then serve."""
        with self.lock:
            self.state.provisioning = self.state.desired
        booting = [
            threading.Thread(target=self._provision, kwargs={"delay": 0.0}, daemon=True)
            for _ in range(self.state.desired)
        ]
        for thread in booting:
            thread.start()
        for thread in booting:
            thread.join()
        self._check_nodes()
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name=f"lb-{self.name}",
        ).start()
        self._supervisor = threading.Thread(
            target=self._supervise, daemon=True, name=f"sup-{self.name}"
        )
        self._supervisor.start()

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.set_outlier_ejection(False)
        with self.lock:
            nodes = list(self.state.nodes.values())
        for node in nodes:
            node.process.kill()

    # -- what faults and the router call -----------------------------------------
    def scale_to(self, desired: int, reason: str) -> None:
        with self.lock:
            if self.state.desired == desired:
                return
            self.state.desired = desired
        self.record("region_scaled", region=self.name, desired=desired, reason=reason)

    def kill_nodes(self, count: int) -> list[str]:
        with self.lock:
            victims = sorted(
                (n for n in self.state.nodes.values() if n.alive),
                key=lambda n: (not n.healthy, n.name),
            )[:count]
        for node in victims:
            node.process.kill()
            self.record("node_killed", region=self.name, node=node.name)
        return [node.name for node in victims]

    def kill_node(self, name: str, reason: str) -> bool:
        """Crash one named node (its instance was stopped or terminated)."""
        with self.lock:
            node = self.state.nodes.get(name)
        if node is None or not node.alive:
            return False
        node.process.kill()
        self.record("node_killed", region=self.name, node=name, reason=reason)
        return True

    def set_node_fault(self, count: int, body: JsonObject) -> list[str]:
        """Put ``count`` serving nodes into a fault mode (``body``: see _node_faults);
        the names of those that took it."""
        with self.lock:
            chosen = sorted(
                (n for n in self.state.nodes.values() if n.alive and n.healthy),
                key=lambda n: n.name,
            )[:count]
        taken = [node.name for node in chosen if _admin(node.port, body)]
        for name in taken:
            self.record("node_fault_set", region=self.name, node=name, **body)
        return taken

    def set_fault_of(self, name: str, body: JsonObject) -> bool:
        """Put the named node into a fault mode (or, with ``{"mode": "none"}``, out)."""
        with self.lock:
            node = self.state.nodes.get(name)
        if node is None or not node.alive or not _admin(node.port, body):
            return False
        self.record("node_fault_set", region=self.name, node=name, **body)
        return True

    def clear_node_faults(self) -> list[str]:
        """Every live node back to normal; the names of those that answered."""
        with self.lock:
            nodes = [n for n in self.state.nodes.values() if n.alive]
        cleared = [node.name for node in nodes if _admin(node.port, {"mode": "none"})]
        self.record("node_faults_cleared", region=self.name, nodes=cleared)
        return cleared

    def set_outlier_ejection(self, enabled: bool) -> None:
        with self.lock:
            current, self.ejection = self.ejection, OutlierEjection() if enabled else None
        if current is not None:
            current.close()
        if (current is not None) != enabled and not self._stopping.is_set():
            self.record("outlier_ejection", region=self.name, enabled=enabled)

    def set_launch_suspended(self, suspended: bool) -> None:
        with self.lock:
            changed = self.state.launch_suspended != suspended
            self.state.launch_suspended = suspended
        if changed:
            kind = "gpu_launch_suspended" if suspended else "gpu_launch_resumed"
            self.record(kind, region=self.name)

    def set_room(self, room: int) -> None:
        """How many more nodes the region's cluster can place now (free schedulable
        GPU nodes, as the Kubernetes twin counts them)."""
        with self.lock:
            self.state.room = max(0, room)

    def fail(self) -> None:
        with self.lock:
            self.state.failed = True
            nodes = list(self.state.nodes.values())
        for node in nodes:
            node.process.kill()
        self.record("region_failed", region=self.name)

    def restore(self) -> None:
        with self.lock:
            was_failed, self.state.failed = self.state.failed, False
        if was_failed:
            self.record("region_restored", region=self.name)

    def set_capacity_exhausted(self, exhausted: bool) -> None:
        with self.lock:
            self.state.capacity_exhausted = exhausted
            self.state.refusal_reported = False
        self.record(
            "gpu_capacity_exhausted" if exhausted else "gpu_capacity_restored", region=self.name
        )

    def problems(self, nominal_desired: int) -> list[str]:
        """What keeps this region from its nominal state (empty when nominal)."""
        with self.lock:
            state = self.state
            alive = sum(n.alive for n in state.nodes.values())
            healthy = sum(n.alive and n.healthy for n in state.nodes.values())
            found = []
            if state.failed:
                found.append(f"{self.name} is failed")
            if state.capacity_exhausted:
                found.append(f"{self.name} has no free GPU capacity")
            if state.launch_suspended:
                found.append(f"{self.name}: GPU node launches are suspended")
            if state.desired != nominal_desired:
                found.append(
                    f"{self.name} wants {state.desired} GPU nodes, nominal is {nominal_desired}"
                )
            if healthy < nominal_desired:
                found.append(f"{self.name}: {healthy} of {nominal_desired} GPU nodes healthy")
            if alive > nominal_desired:
                found.append(
                    f"{self.name}: {alive} GPU nodes running, its nominal size is {nominal_desired}"
                )
            if state.provisioning:
                found.append(f"{self.name}: {state.provisioning} GPU nodes still provisioning")
        if not self.supervising:
            found.append(f"{self.name}: its supervisor is not running")
        return found

    @property
    def supervising(self) -> bool:
        thread = self._supervisor
        return thread is not None and thread.is_alive()

    def healthy_count(self) -> int:
        with self.lock:
            if self.state.failed:
                return 0
            return sum(n.healthy and n.alive for n in self.state.nodes.values())

    def model_versions(self) -> dict[str, str]:
        """The model version each healthy node of a serving region reports."""
        with self.lock:
            if self.state.failed:
                return {}
            return {
                n.name: n.model_version
                for n in self.state.nodes.values()
                if n.alive and n.healthy and n.model_version not in (None, "artifact")
            }

    def snapshot(self) -> RegionSnapshot:
        with self.lock:
            return {
                "name": self.name,
                "port": self.port,
                "desired": self.state.desired,
                "failed": self.state.failed,
                "capacity_exhausted": self.state.capacity_exhausted,
                "provisioning": self.state.provisioning,
                "nodes": [
                    {
                        "name": n.name,
                        "pid": n.process.pid,
                        "port": n.port,
                        "healthy": n.healthy,
                        "alive": n.alive,
                        "model_version": n.model_version,
                    }
                    for n in self.state.nodes.values()
                ],
            }

    # -- supervisor loop ------------------------------------------------------------
    def _supervise(self) -> None:
        # One bad round (a node that dies mid-answer, a failed fork) must never end the
        # loop: a region whose supervisor is gone never provisions a node again.
        while not self._stopping.wait(self.settings.health_interval):
            try:
                self._check_nodes()
                self._reconcile()
            except Exception as exc:
                traceback.print_exc()
                self.record("supervisor_error", region=self.name, error=repr(exc)[:300])

    def _check_nodes(self) -> None:
        with self.lock:
            nodes = list(self.state.nodes.values())
        probed: dict[str, tuple[bool, str | None]] = {}
        for node in nodes:
            if not node.alive:
                with self.lock:
                    self.state.nodes.pop(node.name, None)
                if node.healthy:
                    self.record("node_removed", region=self.name, node=node.name)
                    self._activity("succeeded", cause="its process is gone", kind="balancer",
                                   action=f"take GPU node {node.name} out of rotation",
                                   step="detect")  # fmt: skip
                continue
            probed[node.name] = _probe(node.port)
        ejection = self.ejection
        if ejection is not None:
            up = {n.name: n.port for n in nodes if n.alive and probed.get(n.name, (False,))[0]}
            ejection.check(up)
        for node in nodes:
            if node.name not in probed:
                continue
            healthy, node.model_version = probed[node.name]
            cause = "its health check failed"
            if healthy and ejection is not None and node.name in ejection.ejected:
                why = ejection.ejected[node.name][0]
                healthy, cause = False, f"it failed the quality check: {why}"
            if healthy != node.healthy:
                node.healthy = healthy
                self.record(
                    "node_healthy" if healthy else "node_unhealthy",
                    region=self.name,
                    node=node.name,
                    **({} if healthy else {"cause": cause}),
                )
                verb = "admit GPU node {} to rotation" if healthy else (
                    "take GPU node {} out of rotation")  # fmt: skip
                self._activity("succeeded", kind="balancer", action=verb.format(node.name),
                               cause="" if healthy else cause,
                               step="load" if healthy else "detect")  # fmt: skip
            if ejection is not None and node.name in ejection.ejected:
                self._replace_if_ejected_long(node, ejection.ejected[node.name])

    def _replace_if_ejected_long(self, node: Node, ejected: tuple[str, float]) -> None:
        if time.monotonic() - ejected[1] < _REPLACE_EJECTED_AFTER:
            return
        node.process.kill()
        self.record("node_replaced", region=self.name, node=node.name, cause=ejected[0])
        self._activity("succeeded", kind="launch", action=f"terminate GPU node {node.name}",
                       cause="out of rotation: it failed the quality check")  # fmt: skip

    def _reconcile(self) -> None:
        with self.lock:
            state = self.state
            if state.failed:
                return
            alive = sum(n.alive for n in state.nodes.values())
            missing = state.desired - alive - state.provisioning
            surplus = alive - state.desired
            if state.launch_suspended:
                missing = 0  # replacements are suspended, as the group's processes say
            if missing > 0 and state.capacity_exhausted:
                report = not state.refusal_reported
                state.refusal_reported = True
                missing = 0
            else:
                report = False
                quota_left = self.settings.gpu_quota - alive - state.provisioning
                missing = min(missing, quota_left)
                if state.room is not None:
                    missing = min(missing, state.room - state.provisioning)
                state.provisioning += max(0, missing)
            spare = (
                sorted(state.nodes.values(), key=lambda n: n.name)[-surplus:] if surplus > 0 else []
            )
        if report:
            reason = f"no GPU capacity in region {self.name}"
            self.record("provisioning_refused", region=self.name, reason=reason)
            self._activity("failed", cause=reason)
        for _ in range(max(0, missing)):
            threading.Thread(target=self._provision, daemon=True).start()
        for node in spare:
            with self.lock:
                self.state.nodes.pop(node.name, None)
            node.process.kill()
            self.record("node_released", region=self.name, node=node.name)

    def _provision(self, delay: float | None = None) -> None:
        name = f"{self.name}-node-{next(self._serial)}"
        self.record("node_provisioning", region=self.name, node=name)
        self._activity("started", name)
        try:
            wait = self.settings.provisioning_delay if delay is None else delay
            if self._stopping.wait(wait):
                return
            with self.lock:
                alive = sum(n.alive for n in self.state.nodes.values())
                unneeded = self.state.failed or alive >= self.state.desired
            if unneeded:
                self._activity("cancelled", name, "no longer needed")
                return
            node = self._boot(name)
            if node is None:
                return
            with self.lock:
                # The region may have failed, or been scaled down, while the node booted.
                keep = not self.state.failed and alive_count(self.state) < self.state.desired
                if keep:
                    self.state.nodes[name] = node
            if not keep:
                node.process.kill()
                self.record("node_released", region=self.name, node=name)
                self._activity("cancelled", name, "no longer needed once it had booted")
                return
            self.record("node_booted", region=self.name, node=name, pid=node.process.pid)
            self._activity("succeeded", name)
        finally:
            with self.lock:
                self.state.provisioning -= 1

    def _boot(self, name: str) -> Node | None:
        process = Child(
            [
                sys.executable,
                "-m",
                "aidrill.lab.serving.worker",
                "--region",
                self.name,
                "--node",
                name,
                *self.worker_args,
                "--service-time",
                str(self.settings.service_time),
            ],
            self.log_dir / f"{name}.log",
        )
        self.record("node_process_started", region=self.name, node=name, pid=process.pid)
        self._activity("succeeded", name, kind="node", action=f"start GPU node {name}",
                       step="provision")  # fmt: skip
        ready = process.ready_line(_BOOT_TIMEOUT, self._waiting(name))
        if ready[0] != "READY" or len(ready) < 2:
            process.kill()
            reason = " ".join(ready[1:]) if ready and ready[0] == "REFUSED" else "no answer"
            self.record("node_boot_failed", region=self.name, node=name, reason=reason)
            self._activity("failed", name, f"the node did not start: {reason}")
            return None
        port = int(ready[1])
        load_seconds = float(ready[3]) if len(ready) > 3 else None
        self.record("node_model_loaded", region=self.name, node=name, load_seconds=load_seconds)
        timeout = self.settings.service_time * self.settings.max_queue_per_node + 2.0
        return Node(name, process, port, pool=UpstreamPool("127.0.0.1", port, timeout))

    def _waiting(self, name: str) -> Callable[[str], None]:
        def report(reason: str) -> None:
            self.record("node_model_unavailable", region=self.name, node=name, reason=reason)

        return report

    # -- balancer ---------------------------------------------------------------------
    def pick_node(self) -> Node | None:
        with self.lock:
            if self.state.failed:
                return None
            candidates = [
                n
                for n in self.state.nodes.values()
                if n.healthy and n.inflight < self.settings.max_queue_per_node
            ]
            if not candidates:
                return None
            node = min(candidates, key=lambda n: n.inflight)
            node.inflight += 1
            return node

    def index_pool(self) -> UpstreamPool:
        if self._index_pool is None:
            assert self.index_port is not None
            self._index_pool = UpstreamPool("127.0.0.1", self.index_port, 5.0)
        return self._index_pool

    def release(self, node: Node) -> None:
        with self.lock:
            node.inflight -= 1


def _balancer_handler(region: Region) -> type[JsonHandler]:
    class BalancerHandler(JsonHandler):
        def do_GET(self) -> None:
            if self.path != "/healthz":
                self.send_json(404, {"error": "not found"})
                return
            healthy = region.healthy_count()
            body = {
                "region": region.name,
                "healthy_nodes": healthy,
                "desired": region.state.desired,
                "failed": region.state.failed,
            }
            self.send_json(200 if healthy else 503, body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if region.state.failed:
                self.send_json(503, {"error": f"region {region.name} is unavailable"})
                return
            if self.path == "/search":
                self._forward_search(body)
                return
            if self.path.startswith(NodeFault.ADMIN_PATH):
                self.send_json(404, {"error": "not found"})  # a node's own port only
                return
            node = region.pick_node()
            if node is None or node.pool is None:
                self.send_json(503, {"error": f"no free GPU node in region {region.name}"})
                return
            if self.path.startswith(STREAMED_PREFIX):
                self._forward_streamed(node, node.pool, body)
                return
            try:
                status, payload, headers = node.pool.request(
                    "POST", self.path, body, {"Content-Type": "application/json"}
                )
            except OSError:
                self.send_json(502, {"error": f"node {node.name} failed"})
                return
            finally:
                region.release(node)
            self._relay(status, payload, headers)

        def _forward_streamed(self, node: Node, pool: UpstreamPool, body: bytes) -> None:
            """An OpenAI-style answer, passed on as the node sends it (its tokens one by
            one); the node stays taken until its answer has ended."""
            try:
                try:
                    status, upstream, pieces = pool.stream(
                        "POST", self.path, body, {"Content-Type": "application/json"}
                    )
                except OSError:
                    self.send_json(502, {"error": f"node {node.name} failed"})
                    return
                self.relay_stream(status, relayed(upstream, region.name), pieces)
            finally:
                region.release(node)

        def _forward_search(self, body: bytes) -> None:
            if region.index_port is None:
                self.send_json(503, {"error": f"no vector index service in {region.name}"})
                return
            try:
                status, payload, headers = region.index_pool().request(
                    "POST", "/search", body, {"Content-Type": "application/json"}
                )
            except OSError:
                self.send_json(502, {"error": f"index service of {region.name} failed"})
                return
            self._relay(status, payload, headers)

        def _relay(self, status: int, payload: bytes, upstream: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Aidrill-Region", region.name)
            for name in RELAYED_HEADERS:
                if name in upstream:
                    self.send_header(name, upstream[name])
            self.end_headers()
            self.wfile.write(payload)

    return BalancerHandler


# What a node says about its answer that the balancer and router pass on to the caller:
# how fresh the data behind it was and which node served it.
RELAYED_HEADERS = ("X-Aidrill-Feature-Age", "X-Aidrill-Index-Age", "X-Aidrill-Node")
STREAMED_PREFIX = "/v1/"  # the OpenAI-style API: answers pass on as they are written


def relayed(upstream: dict[str, str], region: str) -> dict[str, str]:
    """The headers a streamed answer keeps on its way out: its content type, the region
    that served it and what the node said about it."""
    kept = {"Content-Type": upstream.get("Content-Type", "application/json")}
    kept["X-Aidrill-Region"] = upstream.get("X-Aidrill-Region", region)
    kept.update({name: upstream[name] for name in RELAYED_HEADERS if name in upstream})
    return kept


def alive_count(state: RegionState) -> int:
    return sum(n.alive for n in state.nodes.values())


def _probe(port: int) -> tuple[bool, str | None]:
    """Whether the node answers its health check, and the model version it serves."""
    try:
        status, body = get_json("127.0.0.1", port, "/healthz", timeout=1.0)
    except (OSError, http.client.HTTPException, ValueError):
        # A node killed mid-answer cuts its reply short (IncompleteRead, bad JSON).
        return False, None
    version = body.get("model_version") if isinstance(body, dict) else None
    return status == 200, None if version is None else str(version)


def _admin(port: int, body: JsonObject) -> bool:
    try:
        status, _ = post_json("127.0.0.1", port, NodeFault.ADMIN_PATH, body, timeout=2.0)
    except (OSError, http.client.HTTPException, ValueError):
        return False
    return status == 200
