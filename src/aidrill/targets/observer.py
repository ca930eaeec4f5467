"""Canary writes and per-tier probes during a run, through a target's public endpoints.

Measurement needs series that only an outside observer can produce; this one reaches
every tier the way a client would (Redis, HTTP, the S3 API), never a target's own
account of itself:

- ``canary.jsonl``: a sequence-numbered write every 100 ms to the feature store's
  primary endpoint (``ZADD canary:<run> seq seq``), each with its time and outcome;
- ``canary-audit.json``: the sequence numbers that survive in the store that serves
  after the fault, read when the rollbacks start. Only writes answered before the
  audit began count as acknowledged for it, so "acknowledged before the audit" never
  includes a write the read could not yet see;
- ``index-canary.jsonl``: a canary vector every 200 ms, written through the primary
  index service's public API (``POST /upsert``), each with its time and outcome;
- ``components.jsonl``: every 250 ms, one sample per stateful tier (feature reads
  and writes, which canary vectors the serving index returns, the production alias in
  the serving registry), plus replication lag; every second the model artifact
  fetched and verified from the serving region; every 100 ms, each pipeline's published
  progress (step, the step it resumed from), timed here;
- ``artifact-versions.json``: the model artifact's versions at the start and the end;
- ``registry-canary.jsonl``, ``registry-audit.json`` and the ``model-registry``
  samples: see :mod:`aidrill.targets._registry_watch`.

Every probe series runs on a fixed clock (:class:`~aidrill.targets._schedule.Schedule`):
a probe that waits for its answer never delays the next one, so a slow tier shows as
failed samples, not as a hole in the evidence. The canary writer is a process of its
own (:mod:`aidrill.targets._canary_writer`). Each part reports its health through
:meth:`TierObserver.parts`, which the run watches.

Everything here is bounded: the threads stop with the run (or after its maximum
duration), and each sample is one short request.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import redis

from aidrill._apparatus import ApparatusPart, Heartbeats, process_check
from aidrill._artifact import ArtifactRefused
from aidrill._evidence import (
    ARTIFACT_VERSIONS_FILE,
    CANARY_AUDIT_FILE,
    CANARY_FILE,
    COMPONENTS_FILE,
    HEALTH_FILE,
    INDEX_CANARY_FILE,
    REGISTRY_AUDIT_FILE,
    REGISTRY_CANARY_FILE,
)
from aidrill._http import HttpClient
from aidrill.targets._canary_writer import INTERVAL as CANARY_INTERVAL
from aidrill.targets._canary_writer import CanaryWriter
from aidrill.targets._endpoints import Address, Endpoints, ReplicationReport
from aidrill.targets._outside import (
    canary_vector,
    fetch_model,
    join,
    model_versions,
    redis_at,
    seq_ranges,
)
from aidrill.targets._registry_watch import RegistryWatch
from aidrill.targets._schedule import Schedule

_INDEX_CANARY_INTERVAL = 0.2
_PIPELINE_INTERVAL = 0.1
_SAMPLE_INTERVAL = 0.25
# The series each loop feeds (a schedule feeds the series it is named after).
_FEEDS = {
    "index-canary": ("index-canary",),
    "registry-canary": ("registry-canary",),
    "pipeline-probe": ("training", "evaluation"),
}
_ARTIFACT_INTERVAL = 1.0
_REGISTRY_INTERVAL = 0.5
_PIPELINE_STALL = 2.0  # eight missed steps of a quarter second: stalled, not just slow
_REDIS_ERRORS = (redis.RedisError, OSError, ValueError)
# A canary write is answered (or times out) within 0.3 s of the last: when the newest is
# older than this, the writer has stopped and there is no evidence about writes.
_CANARY_FRESH = 1.0
_LOOP_STALL = 10.0  # a loop that has not gone round for this long has stopped
_SERVING_TTL = 0.25  # how long the serving region, as the router says, is reused


class TierObserver:
    def __init__(self, endpoints: Endpoints, run_dir: Path, run_id: str, max_duration: float):
        self.endpoints = endpoints
        self.http = HttpClient(endpoints.http)
        self.run_dir = run_dir
        self.key = f"canary:{run_id}"
        self.deadline = time.monotonic() + max_duration
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._schedules: list[Schedule] = []
        self.beats = Heartbeats()
        self._write_lock = threading.Lock()
        self._writer: CanaryWriter | None = None
        self._canary_times: dict[int, float] = {}  # seq -> sent, read back from canary.jsonl
        self._canary_newest: tuple[float, bool] | None = None  # (answered at, ok)
        self._canary_read = 0  # bytes of canary.jsonl read so far
        self._canary_lock = threading.Lock()
        self._serving: tuple[float, str | None] | None = None
        self._serving_lock = threading.Lock()
        self._components: IO[str] = (run_dir / COMPONENTS_FILE).open("a", encoding="utf-8")
        self._index_canary: IO[str] = (run_dir / INDEX_CANARY_FILE).open("a", encoding="utf-8")
        self._index_acked: list[int] = []  # canary vectors the primary acknowledged
        self._registry: RegistryWatch | None = None
        if endpoints.registry and endpoints.registry_model:
            self._registry = RegistryWatch(
                endpoints.registry, endpoints.primary, endpoints.registry_model, run_id, self.http
            )
        self._registry_canary: IO[str] = (run_dir / REGISTRY_CANARY_FILE).open(
            "a", encoding="utf-8"
        )
        self._registry_lock = threading.Lock()  # one canary change or the audit
        self._health: IO[str] | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._write_versions("before")
        self.start_canary()
        # A series only for a tier the estate has: a loop with nothing to watch would end
        # at once, and an ended loop is a stopped apparatus.
        if self.endpoints.index.get(self.endpoints.primary) is not None:
            self._spawn(self._index_canary_loop, "index-canary")
        if self.endpoints.pipelines is not None:
            self._spawn(self._pipeline_loop, "pipeline-probe")
        self._schedule("feature-store", _SAMPLE_INTERVAL, self._feature_sample)
        self._schedule("replication-lag", _SAMPLE_INTERVAL, self._lag_sample)
        self._schedule("vector-index", _SAMPLE_INTERVAL, self._index_sample)
        if self.endpoints.artifacts:
            self._schedule("model-artifacts", _ARTIFACT_INTERVAL, self._artifact_sample)
        if self.endpoints.health_signals is not None:
            self._health = (self.run_dir / HEALTH_FILE).open("a", encoding="utf-8")
            self._schedule("health", self.endpoints.health_interval, self._health_sample)
        if self._registry is not None:
            self._registry.begin()
            self._schedule("model-registry", _SAMPLE_INTERVAL, self._registry_sample)
            self._spawn(self._registry_canary_loop, "registry-canary")

    def start_canary(self) -> CanaryWriter | None:
        """Only the feature-store canary writer (its own process)."""
        address = self.endpoints.feature_store
        if address is None:
            return None
        seconds = max(1.0, self.deadline - time.monotonic())
        self._writer = CanaryWriter(
            address.host, address.port, self.key, self.run_dir / CANARY_FILE, seconds
        )
        return self._writer

    def parts(self) -> list[ApparatusPart]:
        """Every part of this observer the run should watch, with the series it feeds."""
        parts = []
        if self._writer is not None:
            parts.append(
                ApparatusPart(
                    "the feature-store canary writer",
                    ("feature-store-canary", "feature-store"),
                    process_check(self._writer.process),
                )
            )
        for thread in self._threads:
            parts.append(
                ApparatusPart(
                    f"the {thread.name} loop",
                    _FEEDS.get(thread.name, (thread.name,)),
                    self.beats.check(thread.name, _LOOP_STALL),
                )
            )
        for schedule in self._schedules:
            parts.append(
                ApparatusPart(
                    f"the {schedule.name} probe",
                    (schedule.name,),
                    self.beats.check(schedule.name, _LOOP_STALL),
                )
            )
        return parts

    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except Exception as exc:  # recorded by the run's watch, never swallowed
                self.beats.ended(name, f"failed: {type(exc).__name__}: {exc}"[:200])
                raise
            if not self._stop.is_set() and time.monotonic() < self.deadline:
                self.beats.ended(name, "ended")

        thread = threading.Thread(target=guarded, daemon=True, name=name)
        thread.start()
        self._threads.append(thread)
        return thread

    def _schedule(self, name: str, interval: float, probe: Callable[[float], None]) -> None:
        schedule = Schedule(name, interval, probe, self._stop, self.deadline, self.beats)
        schedule.start()
        self._schedules.append(schedule)

    def audit(self) -> None:
        """Read which canary writes survive in the store that serves now."""
        survivors: list[int] | None = None
        error = None
        # A canary write answered before this instant was applied before the read below
        # (see the writer's module): only those count as acknowledged for the RPO.
        audited_at = time.time()
        try:
            with contextlib.closing(self._feature_store()) as client:
                members: Any = client.zrange(self.key, 0, -1)
                survivors = sorted(int(m) for m in members)
        except _REDIS_ERRORS as exc:
            error = str(exc)
        record = {"time": audited_at, "key": self.key, "surviving": survivors, "error": error}
        (self.run_dir / CANARY_AUDIT_FILE).write_text(json.dumps(record), encoding="utf-8")
        if self._registry is not None:
            with self._registry_lock:
                found = self._registry.audit(self._serving_region())
            (self.run_dir / REGISTRY_AUDIT_FILE).write_text(json.dumps(found), encoding="utf-8")

    def stop(self) -> None:
        self.halt()
        self._write_versions("after")
        with contextlib.suppress(*_REDIS_ERRORS), contextlib.closing(self._feature_store()) as c:
            c.delete(self.key)
        if self._registry is not None:
            self._registry.cleanup()

    def halt(self) -> None:
        """Stop the threads and close the evidence files (``stop`` also records the end)."""
        self._stop.set()
        if self._writer is not None:
            self._writer.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        for schedule in self._schedules:
            schedule.join(timeout=5)
        with self._write_lock:
            self._components.close()
            self._index_canary.close()
            self._registry_canary.close()
            if self._health is not None:
                self._health.close()

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self.deadline

    # -- canary writes ----------------------------------------------------------------
    def _read_canary(self) -> tuple[float, bool] | None:
        """New records of ``canary.jsonl`` (the writer process appends them): the time
        each write was sent, and the newest answer."""
        with self._canary_lock:
            try:
                with (self.run_dir / CANARY_FILE).open("rb") as handle:
                    handle.seek(self._canary_read)
                    chunk = handle.read()
            except OSError:
                return self._canary_newest
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._canary_read += len(complete)
            for line in complete.splitlines():
                try:
                    record = json.loads(line)
                    self._canary_times[int(record["seq"])] = float(record["time"])
                    answered = float(record.get("acked", record["time"]))
                    self._canary_newest = (answered, bool(record["ok"]))
                except (ValueError, KeyError, TypeError):
                    continue
            return self._canary_newest

    def _index_canary_loop(self) -> None:
        """Write a named canary vector through the primary index's public API."""
        base = self.endpoints.index.get(self.endpoints.primary)
        seq = 0
        next_at = time.monotonic()
        while self._running() and base is not None:
            self.beats.beat("index-canary")
            seq += 1
            started = time.time()
            write = {"id": self._vector_id(seq), "vector": canary_vector(seq)}
            ok = self.http.json("POST", join(base, "/upsert"), write)[0] == 200
            if ok:
                self._index_acked.append(seq)
            self._write(self._index_canary, {"seq": seq, "time": round(started, 4), "ok": ok})
            next_at += _INDEX_CANARY_INTERVAL
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _registry_canary_loop(self) -> None:
        """A canary version and alias move in the primary registry every half second."""
        assert self._registry is not None
        seq = 0
        next_at = time.monotonic()
        while self._running():
            self.beats.beat("registry-canary")
            seq += 1
            with self._registry_lock:
                record = self._registry.change(seq)
            self._write(self._registry_canary, record)
            next_at += _REGISTRY_INTERVAL
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _vector_id(self, seq: int) -> str:
        return f"{self.key}:v{seq}"

    # -- pipelines --------------------------------------------------------------------
    def _pipeline_loop(self) -> None:
        """Each job's published progress, timed here: a step is first seen when seen."""
        url = self.endpoints.pipelines
        last_change: dict[str, tuple[int, float]] = {}
        while self._running() and url is not None:
            self.beats.beat("pipeline-probe")
            now = time.time()
            status, jobs = self.http.json("GET", url)
            for job, state in (jobs or {}).items() if status == 200 else ():
                step = int(state.get("step") or 0)
                if last_change.get(job, (None, 0.0))[0] != step:
                    last_change[job] = (step, now)
                stalled = now - last_change[job][1] > _PIPELINE_STALL
                running = bool(state.get("running")) and not stalled
                self._write(self._components, {
                    "time": now, "component": job, "ok": running,
                    "quality": 1.0 if running else 0.0, "region": state.get("region"),
                    "step": step, "resumed_from_step": state.get("resumed_from_step"),
                    "resumes": state.get("resumes"),
                })  # fmt: skip
            self._stop.wait(_PIPELINE_INTERVAL)

    # -- component samples ------------------------------------------------------------
    def _feature_sample(self, now: float) -> None:
        """Feature reads answer and canary writes succeed through the primary endpoint.
        With no fresh canary answer (the writer stopped), there is no evidence about
        writes: no sample, so the series shows the gap instead of a stale "ok"."""
        canary = self._read_canary() if self._writer is not None else None
        if self._writer is not None and (canary is None or now - canary[0] > _CANARY_FRESH):
            return
        ok = False
        with contextlib.suppress(*_REDIS_ERRORS), contextlib.closing(self._feature_store()) as c:
            ok = c.get("feature:e0000") is not None
        writes_ok = canary is not None and canary[1]
        self._write(self._components, {
            "time": now, "component": "feature-store", "ok": ok and writes_ok,
            "quality": 1.0 if ok else 0.0,
        })  # fmt: skip

    def _lag_sample(self, now: float) -> None:
        """Replication lag: the feature replica's delay, read from outside as the age of
        the newest canary the replica holds; and the target's own replication figures
        where it offers them (charted only)."""
        serving = self._serving_region()
        self._read_canary()
        replica_lag = None
        replica = next((n for n in self.endpoints.feature_regions if n != serving), None)
        if replica is not None and self._canary_times:
            with contextlib.suppress(*_REDIS_ERRORS):
                address = self.endpoints.feature_regions[replica]
                with contextlib.closing(redis_at(address, 0.3)) as client:
                    newest: Any = client.zrevrange(self.key, 0, 0)
                if newest:
                    written = self._canary_times.get(int(newest[0]))
                    if written is not None:
                        replica_lag = round(max(0.0, now - written - CANARY_INTERVAL), 3)
        replication = ReplicationReport()
        if self.endpoints.replication is not None:
            with contextlib.suppress(Exception):  # a chart's extra, never worth a run
                replication = self.endpoints.replication()
        self._write(self._components, {
            "time": now, "component": "replication-lag", "ok": True,
            "s3_backlog_seconds": replication.backlog_seconds,
            "s3_paused": replication.paused,
            "feature_replica_lag_seconds": replica_lag,
        })  # fmt: skip

    def _index_sample(self, now: float) -> None:
        """Which acknowledged canary vectors the serving region's index returns."""
        serving = self._serving_region()
        base = self.endpoints.index.get(serving or "")
        acked = list(self._index_acked)
        present: list[int] | None = None
        if base is not None:
            ids = [self._vector_id(s) for s in acked]
            status, body = self.http.json("POST", join(base, "/fetch"), {"ids": ids})
            if status == 200 and isinstance(body, dict):
                found = {str(name) for name in body.get("ids") or []}
                present = [s for s in acked if self._vector_id(s) in found]
        self._write(self._components, {
            "time": now, "component": "vector-index", "ok": present is not None,
            "quality": 1.0 if present is not None else 0.0, "region": serving,
            "canaries_present": None if present is None else seq_ranges(present),
        })  # fmt: skip

    def _registry_sample(self, now: float) -> None:
        assert self._registry is not None
        self._write(self._components, self._registry.sample(now, self._serving_region()))

    def _serving_region(self) -> str | None:
        """The region the global endpoint serves from, as its health endpoint says (one
        answer serves every probe for a quarter second)."""
        if self.endpoints.serving_health is None:
            return self.endpoints.primary
        with self._serving_lock:
            now = time.monotonic()
            if self._serving is not None and now - self._serving[0] < _SERVING_TTL:
                return self._serving[1]
            status, body = self.http.json("GET", self.endpoints.serving_health)
            answered = status in (200, 503) and isinstance(body, dict)
            serving = body.get("serving") if answered else None
            region = str(serving[0]) if serving else None
            self._serving = (time.monotonic(), region)
            return region

    def _health_sample(self, now: float) -> None:
        """What the target's health checks claim now (never fails the schedule: a
        signal that cannot be read is recorded as an error, not as unhealthy)."""
        assert self.endpoints.health_signals is not None and self._health is not None
        try:
            record: dict[str, Any] = {"time": now, "signals": self.endpoints.health_signals()}
        except Exception as exc:
            record = {"time": now, "signals": {}, "error": f"{type(exc).__name__}: {exc}"[:200]}
        self._write(self._health, record)

    def _artifact_sample(self, now: float) -> None:
        """Fetch and verify the model artifact from the serving region's store."""
        detail = None
        region = self._serving_region() or self.endpoints.primary
        store = self.endpoints.artifacts.get(region)
        try:
            if store is None:
                raise ArtifactRefused(f"no artifact store is named for {region}")
            fetch_model(store)
            ok = True
        except (ArtifactRefused, OSError) as exc:
            ok, detail = False, str(exc)[:200]
        self._write(self._components, {
            "time": now, "component": "model-artifacts", "ok": ok,
            "quality": 1.0 if ok else 0.0, "checked_at": now, "detail": detail,
            "answered_at": time.time(),
        })  # fmt: skip

    # -- helpers -----------------------------------------------------------------------
    def _write_versions(self, when: str) -> None:
        if not self.endpoints.artifacts:
            return
        path = self.run_dir / ARTIFACT_VERSIONS_FILE
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = {}
        regions = {}
        for name, store in self.endpoints.artifacts.items():
            listed = model_versions(store)
            for _ in range(3):  # a store busy after the rollbacks may answer 500 once
                if "error" not in listed:
                    break
                time.sleep(0.5)
                listed = model_versions(store)
            regions[name] = listed
        existing[when] = {"time": time.time(), "regions": regions}
        path.write_text(json.dumps(existing, indent=2), encoding="utf-8")

    def _feature_store(self) -> redis.Redis:
        address: Address | None = self.endpoints.feature_store
        if address is None:
            raise OSError("the target names no feature store endpoint")
        return redis_at(address)

    def _write(self, handle: IO[str], record: dict[str, Any]) -> None:
        with self._write_lock:
            if not handle.closed:
                handle.write(json.dumps(record) + "\n")
                handle.flush()


__all__ = ["TierObserver"]
