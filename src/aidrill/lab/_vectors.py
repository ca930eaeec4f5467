"""The vector index: a FAISS index service per region, snapshots and embeddings in S3.

- The corpus embeddings are generated deterministically at lab start and stored in the
  artifact store in chunks (``index/embeddings/<ms>.npy``); new documents keep arriving
  (ingest), each batch stored before it is indexed, so the stored embeddings are always
  enough to rebuild the index without re-embedding anything.
- The primary region's service writes a snapshot of its index every few seconds
  (``index/snapshots/<ms>.faiss``); replication carries chunks and snapshots to the DR
  region, whose service follows the newest replicated snapshot (a warm standby).
- Two recovery paths: restore the newest snapshot, or rebuild from stored embeddings.
- Quality is recall@k against exact search over a held-out query set; ingested documents
  lie far from every query, so the exact answers stay valid while the corpus grows.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from aidrill.lab._http import JsonHandler, QuietServer
from aidrill.lab._storage import RegionStore, StorageError

Record = Callable[..., None]
DIMENSIONS = 32
TOP_K = 10
_CLUSTERS = 64
_SEED = 4242
_HNSW_M = 16
_EF_SEARCH = 64
EMBEDDINGS_PREFIX = "index/embeddings/"
SNAPSHOTS_PREFIX = "index/snapshots/"


def make_corpus(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Base embeddings and held-out queries, clustered, from a fixed seed."""
    rng = np.random.default_rng(_SEED)
    centres = rng.normal(0.0, 4.0, size=(_CLUSTERS, DIMENSIONS))
    labels = rng.integers(0, _CLUSTERS, size=size)
    base = centres[labels] + rng.normal(0.0, 1.0, size=(size, DIMENSIONS))
    query_labels = rng.integers(0, _CLUSTERS, size=200)
    queries = centres[query_labels] + rng.normal(0.0, 1.0, size=(200, DIMENSIONS))
    return base.astype("float32"), queries.astype("float32")


def exact_neighbours(base: np.ndarray, queries: np.ndarray, k: int = TOP_K) -> np.ndarray:
    flat = faiss.IndexFlatL2(DIMENSIONS)
    flat.add(base)
    _, ids = flat.search(queries, k)
    return np.asarray(ids)


def build_index(vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexHNSWFlat(DIMENSIONS, _HNSW_M)
    index.hnsw.efSearch = _EF_SEARCH
    index.add(vectors)
    return index


def _stamp(epoch: float) -> str:
    return f"{int(epoch * 1000):015d}"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class IndexService:
    """One region's index service: ``POST /search``, ``GET /index/info``."""

    def __init__(self, region: str, store: RegionStore, record: Record) -> None:
        self.region = region
        self.store = store
        self.record = record
        self.lock = threading.Lock()
        self.index: faiss.Index | None = None
        self.data_as_of: float | None = None
        self.restored_as_of: float | None = None  # as of when the installed state was
        self.source = "none"
        self.deleted = False
        self.server = QuietServer(("127.0.0.1", 0), _index_handler(self))
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name=f"index-{region}",
        ).start()

    def stop(self) -> None:
        self.server.shutdown()

    def install(self, index: faiss.Index, data_as_of: float, source: str) -> None:
        with self.lock:
            self.index = index
            self.data_as_of = data_as_of
            self.restored_as_of = data_as_of
            self.source = source
            self.deleted = False

    def delete(self) -> None:
        with self.lock:
            self.index = None
            self.deleted = True
            self.source = "deleted"
        self.record("vector_index_deleted", region=self.region)

    def info(self) -> dict[str, Any]:
        with self.lock:
            return {
                "region": self.region,
                "loaded": self.index is not None,
                "ntotal": int(self.index.ntotal) if self.index is not None else 0,
                "data_as_of": self.data_as_of,
                "restored_as_of": self.restored_as_of,
                "source": self.source,
            }

    def search(self, vector: list[float], k: int) -> tuple[list[int], float | None] | None:
        query = np.asarray([vector], dtype="float32")
        with self.lock:
            if self.index is None:
                return None
            _, ids = self.index.search(query, k)
            return [int(i) for i in ids[0]], self.data_as_of

    # -- recovery paths ---------------------------------------------------------------
    def restore_snapshot(self) -> dict[str, Any]:
        started = time.perf_counter()
        newest = self.store.newest(SNAPSHOTS_PREFIX)
        if newest is None:
            raise LookupError(f"no index snapshot in the artifact store of {self.region}")
        key, _ = newest
        body, metadata = self.store.get(key)
        index = faiss.deserialize_index(np.frombuffer(body, dtype="uint8"))
        index.hnsw.efSearch = _EF_SEARCH  # type: ignore[attr-defined]
        as_of = float(metadata["created-at"])
        self.install(index, as_of, f"snapshot {key}")
        return self._restored("snapshot", started, as_of, key)

    def rebuild_from_embeddings(self) -> dict[str, Any]:
        started = time.perf_counter()
        keys = self.store.keys(EMBEDDINGS_PREFIX)
        if not keys:
            raise LookupError(f"no stored embeddings in the artifact store of {self.region}")
        chunks = []
        as_of = 0.0
        for key in keys:
            body, metadata = self.store.get(key)
            chunks.append(np.load(io.BytesIO(body), allow_pickle=False))
            as_of = max(as_of, float(metadata["created-at"]))
        index = build_index(np.concatenate(chunks))
        self.install(index, as_of, f"rebuilt from {len(keys)} embedding chunks")
        return self._restored("rebuild", started, as_of, f"{len(keys)} chunks")

    def _restored(self, method: str, started: float, as_of: float, source: str) -> dict[str, Any]:
        seconds = round(time.perf_counter() - started, 3)
        info = self.info()
        self.record(
            "vector_index_restored",
            region=self.region,
            method=method,
            seconds=seconds,
            data_as_of=as_of,
            ntotal=info["ntotal"],
            source=source,
        )
        return {"method": method, "seconds": seconds, "data_as_of": as_of, "ntotal": info["ntotal"]}


class VectorTier:
    """Both regions' index services, ingest, snapshots and the DR follower."""

    def __init__(
        self,
        primary: str,
        dr: str,
        stores: dict[str, RegionStore],
        size: int,
        snapshot_interval: float,
        state_dir: Path,
        record: Record,
    ) -> None:
        self.primary, self.dr = primary, dr
        self.stores = stores
        self.snapshot_interval = snapshot_interval
        self.record = record
        self.base, queries = make_corpus(size)
        exact = exact_neighbours(self.base, queries)
        self.queries_path = state_dir / "index-queries.json"
        self.queries_path.write_text(
            json.dumps({"k": TOP_K, "queries": queries.tolist(), "exact": exact.tolist()}),
            encoding="utf-8",
        )
        self.services = {name: IndexService(name, stores[name], record) for name in (primary, dr)}
        self._rng = np.random.default_rng(_SEED + 1)
        self._stopping = threading.Event()
        self.writer_failed = False

    def start(self) -> None:
        now = time.time()
        self.stores[self.primary].put(
            EMBEDDINGS_PREFIX + _stamp(now) + ".npy",
            _npy(self.base),
            {"created-at": f"{now:.3f}", "count": str(len(self.base))},
        )
        index = build_index(self.base)
        for name, service in self.services.items():
            copy = index if name == self.primary else faiss.clone_index(index)
            service.install(copy, now, "built at lab start")
        self._snapshot(self.services[self.primary])
        threading.Thread(target=self._write_loop, daemon=True, name="index-writer").start()
        threading.Thread(target=self._follow_loop, daemon=True, name="index-follower").start()

    def stop(self) -> None:
        self._stopping.set()
        for service in self.services.values():
            service.stop()

    def ports(self) -> dict[str, int]:
        return {name: service.port for name, service in self.services.items()}

    def fail_region(self, region: str) -> None:
        service = self.services[region]
        with service.lock:
            service.index = None
            service.source = "region down"
        if region == self.primary:
            self.writer_failed = True

    def restore_region(self, region: str) -> None:
        service = self.services[region]
        if region == self.primary:
            try:
                service.restore_snapshot()
            except LookupError:
                service.rebuild_from_embeddings()
            self.writer_failed = False
        else:
            with service.lock:
                service.source = "awaiting a replicated snapshot"
                service.data_as_of = None

    def is_nominal(self) -> bool:
        return all(s.info()["loaded"] for s in self.services.values()) and not self.writer_failed

    def _write_loop(self) -> None:
        last_snapshot = time.monotonic()
        while not self._stopping.wait(1.0):
            service = self.services[self.primary]
            if self.writer_failed or service.deleted:
                continue
            try:
                self._ingest(service)
                if time.monotonic() - last_snapshot >= self.snapshot_interval:
                    last_snapshot = time.monotonic()
                    self._snapshot(service)
            except StorageError:
                continue  # storage unreachable or throttled: the next round tries again

    def _ingest(self, service: IndexService, batch: int = 16) -> None:
        far = 60.0 + self._rng.normal(0.0, 1.0, size=(batch, DIMENSIONS))
        vectors = far.astype("float32")
        now = time.time()
        self.stores[self.primary].put(
            EMBEDDINGS_PREFIX + _stamp(now) + ".npy",
            _npy(vectors),
            {"created-at": f"{now:.3f}", "count": str(batch)},
        )
        with service.lock:
            if service.index is not None:
                service.index.add(vectors)
                service.data_as_of = now

    def _snapshot(self, service: IndexService) -> None:
        with service.lock:
            if service.index is None:
                return
            data = faiss.serialize_index(service.index)
            as_of = service.data_as_of or time.time()
            ntotal = int(service.index.ntotal)
        self.stores[self.primary].put(
            SNAPSHOTS_PREFIX + _stamp(as_of) + ".faiss",
            data.tobytes(),
            {"created-at": f"{as_of:.3f}", "ntotal": str(ntotal)},
        )
        self.stores[self.primary].prune(SNAPSHOTS_PREFIX, keep=3)

    def _follow_loop(self) -> None:
        """The DR service loads each newer replicated snapshot (a warm standby)."""
        while not self._stopping.wait(1.0):
            service = self.services[self.dr]
            if service.deleted or service.source == "region down":
                continue
            try:
                newest = self.stores[self.dr].newest(SNAPSHOTS_PREFIX)
                if newest is None:
                    continue
                as_of = float(newest[1]["created-at"])
                if service.data_as_of is not None and as_of <= service.data_as_of:
                    continue
                body, _ = self.stores[self.dr].get(newest[0])
            except StorageError:
                continue
            index = faiss.deserialize_index(np.frombuffer(body, dtype="uint8"))
            index.hnsw.efSearch = _EF_SEARCH  # type: ignore[attr-defined]
            service.install(index, as_of, f"replicated snapshot {newest[0]}")


def _index_handler(service: IndexService) -> type[JsonHandler]:
    class IndexHandler(JsonHandler):
        def do_GET(self) -> None:
            if self.path == "/index/info":
                self.send_json(200, service.info())
            elif self.path == "/healthz":
                info = service.info()
                self.send_json(200 if info["loaded"] else 503, info)
            else:
                self.send_json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/search":
                self.send_json(404, {"error": "not found"})
                return
            try:
                body = self.read_json()
                vector = [float(x) for x in body["vector"]]
                k = int(body.get("k", TOP_K))
            except (ValueError, KeyError, TypeError):
                self.send_json(400, {"error": "expected {'vector': [...], 'k': n}"})
                return
            if len(vector) != DIMENSIONS or not 0 < k <= 100:
                self.send_json(400, {"error": f"vector must have {DIMENSIONS} numbers, k 1..100"})
                return
            found = service.search(vector, k)
            if found is None:
                self.send_json(503, {"error": f"no vector index loaded in {service.region}"})
                return
            ids, as_of = found
            self.send_json(
                200,
                {"ids": ids, "region": service.region, "data_as_of": as_of},
                headers={"X-Aidrill-Region": service.region},
            )

    return IndexHandler
