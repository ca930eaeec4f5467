"""The global router (the Route 53 / Global Accelerator role): health checks and failover."""

from __future__ import annotations

import collections
import http.client
import itertools
import random
import threading
import time
import traceback

from aidrill._event import ActivityRecord, activity_record
from aidrill.lab._http import JsonHandler, QuietServer, UpstreamPool, get_json
from aidrill.lab._records import RouterSnapshot
from aidrill.lab.network._faults import Impairment
from aidrill.lab.serving._region import RELAYED_HEADERS, STREAMED_PREFIX, Record, Region, relayed

_FAILURE_THRESHOLD = 2  # consecutive failed health checks before a region counts as down


class GlobalRouter:
    """Routes to the primary region, failing over to the DR region (active-passive), or
    spreads traffic over every healthy region (active-active)."""

    def __init__(
        self,
        regions: list[Region],
        primary: str,
        topology: str,
        nodes_per_region: int,
        interval: float,
        record: Record,
    ) -> None:
        self.regions = {r.name: r for r in regions}
        self.primary = primary
        self.dr = next(name for name in self.regions if name != primary)
        self.topology = topology
        self.nodes_per_region = nodes_per_region
        self.interval = interval
        self.record = record
        self.active = primary
        self.up = {r.name: r.state.desired > 0 for r in regions}
        self._failures = {r.name: 0 if r.state.desired > 0 else _FAILURE_THRESHOLD for r in regions}
        self._spread = itertools.cycle(sorted(self.regions))
        # Degraded paths toward a region: ("clients" | "router", region) -> impairment.
        self.impairments: dict[tuple[str, str], Impairment] = {}
        self._rng = random.Random()
        self._pools = {r.name: UpstreamPool("127.0.0.1", r.port, 10.0) for r in regions}
        self._stopping = threading.Event()
        self._health_thread: threading.Thread | None = None
        self.lock = threading.Lock()
        # What the router did, as its API shows it (a DNS failover record's health
        # check history): regions marked down or up, traffic switched.
        self._activities: collections.deque[ActivityRecord] = collections.deque(maxlen=200)
        self.server = QuietServer(("127.0.0.1", 0), _router_handler(self))
        self.port = self.server.server_address[1]

    def start(self) -> None:
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name="router",
        ).start()
        self._health_thread = threading.Thread(
            target=self._health_loop, daemon=True, name="router-health"
        )
        self._health_thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()

    def serving_regions(self) -> list[str]:
        with self.lock:
            if self.topology == "active-active":
                return [name for name in sorted(self.regions) if self.up[name]]
            return [self.active]

    def choose_region(self) -> str | None:
        serving = self.serving_regions()
        if not serving:
            return None
        if len(serving) == 1:
            return serving[0]
        with self.lock:
            while True:
                name = next(self._spread)
                if name in serving:
                    return name

    def pool(self, region: str) -> UpstreamPool:
        return self._pools[region]

    def snapshot(self) -> RouterSnapshot:
        with self.lock:
            return {
                "port": self.port,
                "topology": self.topology,
                "active": self.active,
                "up": dict(self.up),
            }

    def reset(self) -> None:
        with self.lock:
            self.active = self.primary

    def _health_loop(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                for name in self.regions:
                    self._check(name)
                if self.topology == "active-passive":
                    self._route_active_passive()
            except Exception as exc:  # the loop must outlive any one bad round
                traceback.print_exc()
                self.record("router_error", error=repr(exc)[:300])

    @property
    def checking(self) -> bool:
        return self._health_thread is not None and self._health_thread.is_alive()

    def impair(self, path: str, region: str, impairment: Impairment | None) -> None:
        with self.lock:
            if impairment is None:
                self.impairments.pop((path, region), None)
            else:
                self.impairments[(path, region)] = impairment

    def hold(self, region: str, size: int, paths: tuple[str, ...]) -> None:
        """Hold one transfer toward ``region`` as the degraded paths it crosses would."""
        if not self.impairments:  # the common case: every request asks, nothing to hold
            return
        with self.lock:
            found = [self.impairments.get((path, region)) for path in paths]
            delays = [i.delay(size, self._rng) for i in found if i is not None]
        if delays:
            time.sleep(sum(delays))

    def _check(self, name: str) -> None:
        self.hold(name, 0, ("router",))
        try:
            status, _ = get_json("127.0.0.1", self.regions[name].port, "/healthz", timeout=1.0)
            healthy = status == 200
        except (OSError, http.client.HTTPException, ValueError):
            healthy = False
        with self.lock:
            self._failures[name] = 0 if healthy else self._failures[name] + 1
            was_up = self.up[name]
            now_up = self._failures[name] < _FAILURE_THRESHOLD
            self.up[name] = now_up
        if was_up != now_up:
            self.record("router_region_up" if now_up else "router_region_down", region=name)
            what = "failed" if not now_up else "passes"
            self._activity(f"mark region {name} {'up' if now_up else 'down'}", name,
                           f"its health check {what}", None if now_up else "detect")  # fmt: skip

    def _route_active_passive(self) -> None:
        primary = self.regions[self.primary]
        with self.lock:
            active, primary_up = self.active, self.up[self.primary]
        if active == self.primary and not primary_up:
            self._switch(self.dr, "primary region failed its health checks")
            self.regions[self.dr].scale_to(self.nodes_per_region, "failover to the DR region")
        elif active == self.dr and primary_up and primary.healthy_count() >= self.nodes_per_region:
            self._switch(self.primary, "primary region healthy again at full capacity")
            self.regions[self.dr].scale_to(0, "failback: the DR region returns to pilot light")

    def _switch(self, region: str, reason: str) -> None:
        with self.lock:
            self.active = region
        self.record("router_switched", region=region, reason=reason)
        self._activity(f"switch traffic to region {region}", region, reason, None)

    def _activity(self, action: str, region: str, cause: str, step: str | None) -> None:
        with self.lock:
            self._activities.append(activity_record("router", region, action, cause, step=step))

    def activities(self, since: float) -> list[ActivityRecord]:
        with self.lock:
            return [ActivityRecord(**a) for a in self._activities if a["time"] >= since]


def _router_handler(router: GlobalRouter) -> type[JsonHandler]:
    class RouterHandler(JsonHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                serving = router.serving_regions()
                self.send_json(200 if serving else 503, {"serving": serving})
            else:
                self.send_json(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            region = router.choose_region()
            if region is None:
                self.send_json(503, {"error": "no region is serving"})
                return
            router.hold(region, len(body), ("clients", "router"))
            if self.path.startswith(STREAMED_PREFIX):
                try:
                    status, upstream, pieces = router.pool(region).stream(
                        "POST", self.path, body, {"Content-Type": "application/json"}
                    )
                except OSError:
                    self.send_json(502, {"error": f"region {region} unreachable"})
                    return
                self.relay_stream(status, relayed(upstream, region), pieces)
                return
            try:
                status, payload, headers = router.pool(region).request(
                    "POST", self.path, body, {"Content-Type": "application/json"}
                )
            except OSError:
                self.send_json(502, {"error": f"region {region} unreachable"})
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Aidrill-Region", headers.get("X-Aidrill-Region", region))
            for name in RELAYED_HEADERS:
                if name in headers:
                    self.send_header(name, headers[name])
            self.end_headers()
            self.wfile.write(payload)

    return RouterHandler
