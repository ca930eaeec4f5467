"""Canary writes and per-tier probes during a run, through a target's public endpoints.

Measurement needs series that only an outside observer can produce; this one reaches
every tier the way a client would (Redis, HTTP, the S3 API), never a target's own
account of itself:

- ``canary.jsonl``: a sequence-numbered write every 100 ms to the feature store's
  primary endpoint (``ZADD canary:<run> seq seq``), each with its time and outcome;
- ``canary-audit.json``: the sequence numbers that survive in the store that serves
  after the fault, read when the rollbacks start. No canary write is in flight while
  the audit reads: a write that started before the audit's time has had its answer
  before the read began, so "acknowledged before the audit" never includes a write
  the read could not yet see;
- ``index-canary.jsonl``: a canary vector every 200 ms, written through the primary
  index service's public API (``POST /upsert``), each with its time and outcome;
- ``components.jsonl``: every 250 ms, one sample per stateful tier (feature reads
  and writes, which canary vectors the serving index returns, the model artifact in
  the serving region), plus replication lag; every 100 ms, each pipeline's published
  progress (step, the step it resumed from), timed here;
- ``artifact-versions.json``: the model artifact's versions at the start and the end;
- ``registry-canary.jsonl``, ``registry-audit.json`` and the ``model-registry``
  samples: see :mod:`aidrill.targets._registry_watch`.

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

from aidrill._artifact import ArtifactRefused
from aidrill._evidence import (
    ARTIFACT_VERSIONS_FILE,
    CANARY_AUDIT_FILE,
    CANARY_FILE,
    COMPONENTS_FILE,
    INDEX_CANARY_FILE,
    REGISTRY_AUDIT_FILE,
    REGISTRY_CANARY_FILE,
)
from aidrill.targets._endpoints import Address, Endpoints
from aidrill.targets._outside import (
    canary_vector,
    fetch_model,
    http_json,
    join,
    model_versions,
    redis_at,
    seq_ranges,
)
from aidrill.targets._registry_watch import RegistryWatch

_CANARY_INTERVAL = 0.1
_INDEX_CANARY_INTERVAL = 0.2
_PIPELINE_INTERVAL = 0.1
_SAMPLE_INTERVAL = 0.25
_ARTIFACT_INTERVAL = 1.0
_REGISTRY_INTERVAL = 0.5
_PIPELINE_STALL = 2.0  # eight missed steps of a quarter second: stalled, not just slow
_REDIS_ERRORS = (redis.RedisError, OSError, ValueError)


class TierObserver:
    def __init__(self, endpoints: Endpoints, run_dir: Path, run_id: str, max_duration: float):
        self.endpoints = endpoints
        self.run_dir = run_dir
        self.key = f"canary:{run_id}"
        self.deadline = time.monotonic() + max_duration
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._write_lock = threading.Lock()
        self._canary_lock = threading.Lock()  # one canary write or the audit, never both
        self._canary_times: dict[int, float] = {}
        self._components: IO[str] = (run_dir / COMPONENTS_FILE).open("a", encoding="utf-8")
        self._canary: IO[str] = (run_dir / CANARY_FILE).open("a", encoding="utf-8")
        self._index_canary: IO[str] = (run_dir / INDEX_CANARY_FILE).open("a", encoding="utf-8")
        self._index_acked: list[int] = []  # canary vectors the primary acknowledged
        self._registry: RegistryWatch | None = None
        if endpoints.registry and endpoints.registry_model:
            self._registry = RegistryWatch(
                endpoints.registry, endpoints.primary, endpoints.registry_model, run_id
            )
        self._registry_canary: IO[str] = (run_dir / REGISTRY_CANARY_FILE).open(
            "a", encoding="utf-8"
        )
        self._registry_lock = threading.Lock()  # one canary change or the audit
        self._artifact_ok: tuple[float, bool, str | None] | None = None
        self._canary_ok = False

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._write_versions("before")
        self.start_canary()
        self._spawn(self._index_canary_loop, "index-canary")
        self._spawn(self._sample_loop, "probes")
        self._spawn(self._pipeline_loop, "pipeline-probe")
        self._spawn(self._artifact_loop, "artifact-probe")
        if self._registry is not None:
            self._registry.begin()
            self._spawn(self._registry_canary_loop, "registry-canary")

    def start_canary(self) -> threading.Thread:
        """Only the feature-store canary writer."""
        return self._spawn(self._canary_loop, "canary")

    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, daemon=True, name=name)
        thread.start()
        self._threads.append(thread)
        return thread

    def audit(self) -> None:
        """Read which canary writes survive in the store that serves now."""
        survivors: list[int] | None = None
        error = None
        with self._canary_lock:
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
        for thread in self._threads:
            thread.join(timeout=5)
        with self._write_lock:
            self._components.close()
            self._canary.close()
            self._index_canary.close()
            self._registry_canary.close()

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self.deadline

    # -- canary writes ----------------------------------------------------------------
    def _canary_loop(self) -> None:
        if self.endpoints.feature_store is None:
            return
        client = redis_at(self.endpoints.feature_store, timeout=0.3)
        seq = 0
        next_at = time.monotonic()
        while self._running():
            seq += 1
            with self._canary_lock:
                started = time.time()
                try:
                    client.zadd(self.key, {str(seq): seq})
                    ok = True
                except _REDIS_ERRORS:
                    ok = False
            self._canary_times[seq] = started
            self._canary_ok = ok
            self._write(self._canary, {"seq": seq, "time": round(started, 4), "ok": ok})
            next_at += _CANARY_INTERVAL
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        client.close()

    def _index_canary_loop(self) -> None:
        """Write a named canary vector through the primary index's public API."""
        base = self.endpoints.index.get(self.endpoints.primary)
        seq = 0
        next_at = time.monotonic()
        while self._running() and base is not None:
            seq += 1
            started = time.time()
            write = {"id": self._vector_id(seq), "vector": canary_vector(seq)}
            ok = http_json("POST", join(base, "/upsert"), write)[0] == 200
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
            now = time.time()
            status, jobs = http_json("GET", url)
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
    def _sample_loop(self) -> None:
        while self._running():
            now = time.time()
            serving = self._serving_region()
            samples = [
                self._feature_sample(now),
                self._lag_sample(now, serving),
                self._index_sample(now, serving),
            ]
            if self._registry is not None:
                samples.append(self._registry.sample(now, serving))
            if self._artifact_ok is not None:
                at, ok, detail = self._artifact_ok
                samples.append({"time": now, "component": "model-artifacts", "ok": ok,
                                "quality": 1.0 if ok else 0.0, "checked_at": at,
                                "detail": detail})  # fmt: skip
            for record in samples:
                self._write(self._components, record)
            self._stop.wait(_SAMPLE_INTERVAL)

    def _feature_sample(self, now: float) -> dict[str, Any]:
        """Feature reads answer and canary writes succeed through the primary endpoint."""
        ok = False
        with contextlib.suppress(*_REDIS_ERRORS), contextlib.closing(self._feature_store()) as c:
            ok = c.get("feature:e0000") is not None
        return {
            "time": now,
            "component": "feature-store",
            "ok": ok and self._canary_ok,
            "quality": 1.0 if ok else 0.0,
        }

    def _lag_sample(self, now: float, serving: str | None) -> dict[str, Any]:
        """Replication lag: the feature replica's delay, read from outside as the age of
        the newest canary the replica holds; and the target's own replication figures
        where it offers them (charted only)."""
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
                        replica_lag = round(max(0.0, now - written - _CANARY_INTERVAL), 3)
        replication: dict[str, Any] = {}
        if self.endpoints.replication is not None:
            with contextlib.suppress(Exception):  # a chart's extra, never worth a run
                replication = self.endpoints.replication()
        return {
            "time": now,
            "component": "replication-lag",
            "ok": True,
            "s3_backlog_seconds": replication.get("backlog_seconds"),
            "s3_paused": replication.get("paused"),
            "feature_replica_lag_seconds": replica_lag,
        }

    def _index_sample(self, now: float, serving: str | None) -> dict[str, Any]:
        """Which acknowledged canary vectors the serving region's index returns."""
        base = self.endpoints.index.get(serving or "")
        acked = list(self._index_acked)
        present: list[int] | None = None
        if base is not None:
            ids = [self._vector_id(s) for s in acked]
            status, body = http_json("POST", join(base, "/fetch"), {"ids": ids})
            if status == 200 and isinstance(body, dict):
                found = {str(name) for name in body.get("ids") or []}
                present = [s for s in acked if self._vector_id(s) in found]
        return {
            "time": now,
            "component": "vector-index",
            "ok": present is not None,
            "quality": 1.0 if present is not None else 0.0,
            "region": serving,
            "canaries_present": None if present is None else seq_ranges(present),
        }

    def _serving_region(self) -> str | None:
        """The region the global endpoint serves from, as its health endpoint says."""
        if self.endpoints.serving_health is None:
            return self.endpoints.primary
        status, body = http_json("GET", self.endpoints.serving_health)
        serving = body.get("serving") if status in (200, 503) and isinstance(body, dict) else None
        return str(serving[0]) if serving else None

    def _artifact_loop(self) -> None:
        """Fetch and verify the model artifact from the serving region's store, each second."""
        while self._running() and self.endpoints.artifacts:
            started = time.time()
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
            self._artifact_ok = (started, ok, detail)
            self._stop.wait(_ARTIFACT_INTERVAL)

    # -- helpers -----------------------------------------------------------------------
    def _write_versions(self, when: str) -> None:
        if not self.endpoints.artifacts:
            return
        path = self.run_dir / ARTIFACT_VERSIONS_FILE
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = {}
        regions = {name: model_versions(s) for name, s in self.endpoints.artifacts.items()}
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
