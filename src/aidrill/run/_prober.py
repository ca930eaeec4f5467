"""Canary writes and per-component probes of the stateful tiers, during a lab run.

Measurement needs series that only an outside observer can produce:

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
  the serving region), plus the replication lag of the artifact store and the feature
  replica; every 100 ms, each pipeline's published progress (step, the step it
  resumed from), timed here;
- ``artifact-versions.json``: the model artifact's versions at the start and the end.

Everything here is bounded: the threads stop with the run (or after its maximum
duration), and each sample is one short request.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import redis

from aidrill._evidence import (
    ARTIFACT_VERSIONS_FILE,
    CANARY_AUDIT_FILE,
    CANARY_FILE,
    COMPONENTS_FILE,
    INDEX_CANARY_FILE,
)
from aidrill.errors import DrillError
from aidrill.lab import LabClient
from aidrill.lab._artifacts import MODEL_KEY, ArtifactRefused, fetch_verified
from aidrill.lab._http import get_json, post_json
from aidrill.lab._redis import redis_client
from aidrill.lab._storage import StorageError, s3_client

_CANARY_INTERVAL = 0.1
_INDEX_CANARY_INTERVAL = 0.2
_PIPELINE_INTERVAL = 0.1
_SAMPLE_INTERVAL = 0.25
_ARTIFACT_INTERVAL = 1.0
_PIPELINE_STALL = 2.0  # eight missed steps of a quarter second: stalled, not just slow


class ComponentProber:
    def __init__(self, lab: LabClient, run_dir: Path, run_id: str, max_duration: float) -> None:
        self.lab = lab
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

    def start_canary(self) -> threading.Thread:
        """Only the canary writer (the rest of :meth:`start` needs a whole lab)."""
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
                with contextlib.closing(self._redis(self.lab.info.features_port)) as client:
                    members: Any = client.zrange(self.key, 0, -1)
                    survivors = sorted(int(m) for m in members)
            except (redis.RedisError, OSError, ValueError) as exc:
                error = str(exc)
        record = {"time": audited_at, "key": self.key, "surviving": survivors, "error": error}
        (self.run_dir / CANARY_AUDIT_FILE).write_text(json.dumps(record), encoding="utf-8")

    def stop(self) -> None:
        self.halt()
        self._write_versions("after")
        with (
            contextlib.suppress(redis.RedisError, OSError),
            contextlib.closing(self._redis(self.lab.info.features_port)) as client,
        ):
            client.delete(self.key)

    def halt(self) -> None:
        """Stop the threads and close the evidence files (``stop`` also records the end)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._write_lock:
            self._components.close()
            self._canary.close()
            self._index_canary.close()

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self.deadline

    # -- canary writes ----------------------------------------------------------------
    def _canary_loop(self) -> None:
        client = self._redis(self.lab.info.features_port, timeout=0.3)
        seq = 0
        next_at = time.monotonic()
        while self._running():
            seq += 1
            with self._canary_lock:
                started = time.time()
                try:
                    client.zadd(self.key, {str(seq): seq})
                    ok = True
                except (redis.RedisError, OSError):
                    ok = False
            self._canary_times[seq] = started
            self._canary_ok = ok
            self._write(self._canary, {"seq": seq, "time": round(started, 4), "ok": ok})
            next_at += _CANARY_INTERVAL
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        client.close()

    # -- canary vectors ---------------------------------------------------------------
    def _index_canary_loop(self) -> None:
        """Write a named canary vector through the primary index's public API."""
        port = self.lab.info.index_ports.get(self.lab.info.primary)
        seq = 0
        next_at = time.monotonic()
        while self._running() and port is not None:
            seq += 1
            started = time.time()
            write = {"id": self._vector_id(seq), "vector": canary_vector(seq)}
            ok = _post("127.0.0.1", port, "/upsert", write)[0] == 200
            if ok:
                self._index_acked.append(seq)
            self._write(self._index_canary, {"seq": seq, "time": round(started, 4), "ok": ok})
            next_at += _INDEX_CANARY_INTERVAL
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _vector_id(self, seq: int) -> str:
        return f"{self.key}:v{seq}"

    def _index_sample(self, now: float) -> dict[str, Any]:
        """Which acknowledged canary vectors the serving region's index returns."""
        serving = self._serving_region()
        port = self.lab.info.index_ports.get(serving or "")
        acked = list(self._index_acked)
        present: list[int] | None = None
        if port is not None:
            status, body = _post("127.0.0.1", port, "/fetch",
                                 {"ids": [self._vector_id(s) for s in acked]})  # fmt: skip
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
        """The region the global router serves from, as its health endpoint says."""
        try:
            _, body = get_json("127.0.0.1", self.lab.info.router_port, "/healthz", 1.0)
        except (OSError, http.client.HTTPException, ValueError):
            return None
        serving = body.get("serving") if isinstance(body, dict) else None
        return str(serving[0]) if serving else None

    # -- pipelines --------------------------------------------------------------------
    def _pipeline_loop(self) -> None:
        """Each job's published progress, timed here: a step is first seen when seen."""
        port = self.lab.info.pipelines_port
        last_change: dict[str, tuple[int, float]] = {}
        while self._running() and port is not None:
            now = time.time()
            try:
                status, jobs = get_json("127.0.0.1", port, "/jobs", 1.0)
            except (OSError, http.client.HTTPException, ValueError):
                status, jobs = 0, None
            for job, state in (jobs or {}).items() if status == 200 else ():
                step = int(state.get("step") or 0)
                if last_change.get(job, (None, 0.0))[0] != step:
                    last_change[job] = (step, now)
                running = bool(state.get("running")) and now - last_change[job][1] <= (
                    _PIPELINE_STALL
                )
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
            try:
                data = self.lab.data()
            except DrillError as exc:
                self._write(self._components, {"time": now, "component": "lab", "ok": False,
                                               "error": str(exc)[:200]})  # fmt: skip
                self._stop.wait(_SAMPLE_INTERVAL)
                continue
            for record in self._samples(now, data):
                self._write(self._components, record)
            self._stop.wait(_SAMPLE_INTERVAL)

    def _samples(self, now: float, data: dict[str, Any]) -> list[dict[str, Any]]:
        samples = [
            self._feature_sample(now, data),
            self._lag_sample(now, data),
            self._index_sample(now),
        ]
        if self._artifact_ok is not None:
            at, ok, detail = self._artifact_ok
            samples.append(
                {"time": now, "component": "model-artifacts", "ok": ok,
                 "quality": 1.0 if ok else 0.0, "checked_at": at, "detail": detail}
            )  # fmt: skip
        return samples

    def _feature_sample(self, now: float, data: dict[str, Any]) -> dict[str, Any]:
        """Feature reads answer and canary writes succeed through the primary endpoint."""
        ok = False
        with (
            contextlib.suppress(redis.RedisError, OSError),
            contextlib.closing(self._redis(self.lab.info.features_port, 1.0)) as client,
        ):
            ok = client.get("feature:e0000") is not None
        features = data.get("features") or {}
        return {
            "time": now,
            "component": "feature-store",
            "ok": ok and self._canary_ok,
            "quality": 1.0 if ok else 0.0,
            "active": features.get("active"),
        }

    def _lag_sample(self, now: float, data: dict[str, Any]) -> dict[str, Any]:
        """Replication lag: the artifact store's backlog and the feature replica's delay,
        the latter read from outside as the age of the newest canary the replica holds."""
        features = data.get("features") or {}
        active = features.get("active")
        replica_lag = None
        replica = next((n for n in self.lab.info.feature_region_ports if n != active), None)
        if replica is not None and self._canary_times:
            with contextlib.suppress(redis.RedisError, OSError, ValueError):
                port = self.lab.info.feature_region_ports[replica]
                with contextlib.closing(self._redis(port, 0.3)) as client:
                    newest: Any = client.zrevrange(self.key, 0, 0)
                if newest:
                    written = self._canary_times.get(int(newest[0]))
                    if written is not None:
                        replica_lag = round(max(0.0, now - written - _CANARY_INTERVAL), 3)
        replication = data.get("replication") or {}
        return {
            "time": now,
            "component": "replication-lag",
            "ok": True,
            "s3_backlog_seconds": replication.get("backlog_seconds"),
            "s3_paused": replication.get("paused"),
            "feature_replica_lag_seconds": replica_lag,
        }

    def _artifact_loop(self) -> None:
        """Fetch and verify the model artifact from the serving region's store, each second."""
        while self._running():
            started = time.time()
            detail = None
            try:
                serving = self.lab.data().get("serving") or [self.lab.info.primary]
                region = serving[0]
                fetch_verified(self.lab.info.storage[region], self.lab.info.buckets[region], 5.0)
                ok = True
            except (ArtifactRefused, OSError, DrillError, KeyError) as exc:
                ok, detail = False, str(exc)[:200]
            self._artifact_ok = (started, ok, detail)
            self._stop.wait(_ARTIFACT_INTERVAL)

    # -- helpers -----------------------------------------------------------------------
    def _write_versions(self, when: str) -> None:
        path = self.run_dir / ARTIFACT_VERSIONS_FILE
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = {}
        existing[when] = {"time": time.time(), "regions": self._list_versions()}
        path.write_text(json.dumps(existing, indent=2), encoding="utf-8")

    def _list_versions(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for region, port in self.lab.info.storage.items():
            client = s3_client(port)
            try:
                reply = client.list_object_versions(
                    Bucket=self.lab.info.buckets[region], Prefix=MODEL_KEY
                )
            except StorageError as exc:
                found[region] = {"error": str(exc)[:200]}
                continue
            versions = []
            for item in reply.get("Versions", []):
                head = client.head_object(
                    Bucket=self.lab.info.buckets[region], Key=MODEL_KEY, VersionId=item["VersionId"]
                )
                meta = head.get("Metadata") or {}
                versions.append(
                    {
                        "version_id": item["VersionId"],
                        "latest": item["IsLatest"],
                        "version": meta.get("version"),
                        "source_version": meta.get("source-version"),
                        "sha256": meta.get("sha256"),
                        "created_at": float(meta["created-at"]) if "created-at" in meta else None,
                    }
                )
            markers = [m["VersionId"] for m in reply.get("DeleteMarkers", [])]
            found[region] = {"versions": versions, "delete_markers": markers}
        return found

    @staticmethod
    def _redis(port: int | None, timeout: float = 1.0) -> redis.Redis:
        if port is None:
            raise OSError("the lab has no feature store endpoint")
        return redis_client(port, timeout)

    def _write(self, handle: IO[str], record: dict[str, Any]) -> None:
        with self._write_lock:
            if not handle.closed:
                handle.write(json.dumps(record) + "\n")
                handle.flush()


def canary_vector(seq: int) -> list[float]:
    """A vector far from every query (so recall is untouched), distinct per sequence."""
    return [-60.0 - (seq % 997) / 100.0, (seq // 997) / 10.0] + [-60.0] * 30


def seq_ranges(seqs: list[int]) -> list[list[int]]:
    """Sorted sequence numbers as inclusive ranges: [1, 2, 3, 7] -> [[1, 3], [7, 7]]."""
    ranges: list[list[int]] = []
    for seq in sorted(seqs):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


def _post(host: str, port: int, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
    try:
        return post_json(host, port, path, payload, timeout=1.0)
    except (OSError, http.client.HTTPException, ValueError):
        return 0, None
