"""Canary writes and per-component probes of the stateful tiers, during a lab run.

Measurement needs series that only an outside observer can produce:

- ``canary.jsonl``: a sequence-numbered write every 100 ms to the feature store's
  primary endpoint (``ZADD canary:<run> seq seq``), each with its time and outcome;
- ``canary-audit.json``: the sequence numbers that survive in the store that serves
  after the fault, read when the rollbacks start. No canary write is in flight while
  the audit reads: a write that started before the audit's time has had its answer
  before the read began, so "acknowledged before the audit" never includes a write
  the read could not yet see;
- ``components.jsonl``: every 250 ms, one sample per stateful tier (feature reads
  and writes, the serving index, the model artifact in the serving region, each
  pipeline), plus the replication lag of the artifact store and the feature replica;
- ``artifact-versions.json``: the model artifact's versions at the start and the end.

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

from aidrill.errors import DrillError
from aidrill.lab import LabClient
from aidrill.lab._artifacts import MODEL_KEY, ArtifactRefused, fetch_verified
from aidrill.lab._redis import redis_client
from aidrill.lab._storage import StorageError, s3_client

CANARY_FILE = "canary.jsonl"
CANARY_AUDIT_FILE = "canary-audit.json"
COMPONENTS_FILE = "components.jsonl"
ARTIFACT_VERSIONS_FILE = "artifact-versions.json"
_CANARY_INTERVAL = 0.1
_SAMPLE_INTERVAL = 0.25
_ARTIFACT_INTERVAL = 1.0
_PIPELINE_STALL = 0.75  # three missed steps of a quarter second


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
        self._artifact_ok: tuple[float, bool, str | None] | None = None
        self._canary_ok = False

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._write_versions("before")
        self.start_canary()
        self._spawn(self._sample_loop, "probes")
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
        serving = (data.get("serving") or [None])[0]
        samples = [self._feature_sample(now, data), self._lag_sample(now, data)]
        index = (data.get("index") or {}).get(serving or "", {})
        samples.append(
            {
                "time": now,
                "component": "vector-index",
                "ok": bool(index.get("loaded")),
                "quality": 1.0 if index.get("loaded") else 0.0,
                "region": serving,
                "source": index.get("source"),
                "data_as_of": index.get("data_as_of"),
                "restored_as_of": index.get("restored_as_of"),
            }
        )
        for job, state in (data.get("pipelines") or {}).items():
            last = state.get("last_step_at") or 0.0
            running = bool(state.get("running")) and now - last <= _PIPELINE_STALL
            samples.append(
                {
                    "time": now,
                    "component": job,
                    "ok": running,
                    "quality": 1.0 if running else 0.0,
                    "region": state.get("region"),
                    "step": state.get("step"),
                    "resumed_from": state.get("resumed_from"),
                }
            )
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
            contextlib.closing(self._redis(self.lab.info.features_port, 0.3)) as client,
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
