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
- Writes through the public API (``POST /upsert`` with an id) are acknowledged once
  indexed and stored with the next embedding chunk; ``POST /fetch`` says which ids the
  index holds. A drill's canary vectors use them to measure RPO from outside.
- Bounded, as a long-running lab must be: the simulated document stream stops once
  the corpus has grown by a quarter (API writes are always taken), a snapshot is
  written only when the index changed, and a lifecycle rule compacts old embedding
  chunks into one ``~base`` chunk (rebuilds read from the newest base on).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from aidrill._json import JsonObject
from aidrill.lab._http import JsonHandler, QuietServer
from aidrill.lab._records import IndexInfo
from aidrill.lab.data._storage import RegionStore, StorageError

Record = Callable[..., None]
DIMENSIONS = 32
TOP_K = 10
_CLUSTERS = 64
_SEED = 4242
_HNSW_M = 16
_EF_SEARCH = 64
_FETCH_LIMIT = 10_000
_GROWTH = 1.25  # the document stream stops when the corpus reaches this times its start
_COMPACT_FROM = 120  # embedding chunks after the newest base before they are compacted
_SUPERSEDED_GRACE = 60.0  # seconds a compacted chunk outlives its base (rebuilds reading)
COMPACTED = "~base.npz"  # sorts after the chunk of the same stamp
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


def _key_time(key: str) -> float:
    """When the chunk a key names was written (compaction names a base after the newest
    chunk it merges, so a base is at least this old)."""
    return int(key.rsplit("/", 1)[-1][:15]) / 1000


def live_embedding_keys(keys: list[str]) -> list[str]:
    """The chunks a rebuild reads: from the newest compacted base on (all without one)."""
    ordered = sorted(keys)
    bases = [i for i, key in enumerate(ordered) if key.endswith(COMPACTED)]
    return ordered[bases[-1] :] if bases else ordered


def pack_chunk(vectors: np.ndarray, names: list[str]) -> bytes:
    """An embedding chunk: the vectors and, aligned with them, their ids ("" for none)."""
    buffer = io.BytesIO()
    np.savez(buffer, vectors=vectors, names=np.array(names, dtype=str))
    return buffer.getvalue()


def unpack_chunk(body: bytes) -> tuple[np.ndarray, list[str]]:
    with np.load(io.BytesIO(body), allow_pickle=False) as data:
        return np.asarray(data["vectors"], dtype="float32"), [str(n) for n in data["names"]]


def pack_snapshot(index: faiss.Index, names: dict[str, int]) -> bytes:
    """A snapshot: the serialized index and the ids of the named vectors in it."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        index=faiss.serialize_index(index),
        names=np.frombuffer(json.dumps(names).encode(), dtype="uint8"),
    )
    return buffer.getvalue()


def unpack_snapshot(body: bytes) -> tuple[faiss.Index, dict[str, int]]:
    with np.load(io.BytesIO(body), allow_pickle=False) as data:
        index = faiss.deserialize_index(np.asarray(data["index"], dtype="uint8"))
        names = json.loads(bytes(data["names"]).decode())
    index.hnsw.efSearch = _EF_SEARCH  # type: ignore[attr-defined]
    return index, {str(k): int(v) for k, v in names.items()}


class IndexService:
    """One region's index service: ``POST /search``, ``GET /index/info``."""

    def __init__(self, region: str, store: RegionStore, record: Record) -> None:
        self.region = region
        self.store = store
        self.record = record
        self.lock = threading.Lock()
        self.index: faiss.Index | None = None
        self.names: dict[str, int] = {}  # id given at upsert -> position in the index
        self.unsaved: list[tuple[str, np.ndarray]] = []  # acknowledged, not yet stored
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

    def install(
        self, index: faiss.Index, data_as_of: float, source: str, names: dict[str, int]
    ) -> None:
        with self.lock:
            self.index = index
            self.names = dict(names)
            self.unsaved = []
            self.data_as_of = data_as_of
            self.restored_as_of = data_as_of
            self.source = source
            self.deleted = False

    def drop(self, source: str, deleted: bool = False) -> None:
        """Lose the index and what was acknowledged but not yet stored with it."""
        with self.lock:
            self.index = None
            self.names = {}
            self.unsaved = []
            self.source = source
            self.deleted = deleted or self.deleted

    def delete(self) -> None:
        self.drop("deleted", deleted=True)
        self.record("vector_index_deleted", region=self.region)

    def upsert(self, name: str, vector: list[float]) -> bool:
        """Index one named vector now (acknowledged); it is stored with the next chunk."""
        array = np.asarray([vector], dtype="float32")
        with self.lock:
            if self.index is None:
                return False
            self.names[name] = int(self.index.ntotal)
            self.index.add(array)
            self.unsaved.append((name, array[0]))
            self.data_as_of = time.time()
            return True

    def fetch(self, names: list[str]) -> list[str] | None:
        """Which of ``names`` the index holds (None: no index is loaded)."""
        with self.lock:
            if self.index is None:
                return None
            return [name for name in names if name in self.names]

    def take_unsaved(self) -> list[tuple[str, np.ndarray]]:
        with self.lock:
            taken, self.unsaved = self.unsaved, []
            return taken

    def info(self) -> IndexInfo:
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
    def restore_snapshot(self) -> JsonObject:
        started = time.perf_counter()
        newest = self.store.newest(SNAPSHOTS_PREFIX)
        if newest is None:
            raise LookupError(f"no index snapshot in the artifact store of {self.region}")
        key, _ = newest
        body, metadata = self.store.get(key)
        index, names = unpack_snapshot(body)
        as_of = float(metadata["created-at"])
        self.install(index, as_of, f"snapshot {key}", names)
        return self._restored("snapshot", started, as_of, key)

    def rebuild_from_embeddings(self) -> JsonObject:
        started = time.perf_counter()
        keys = live_embedding_keys(self.store.keys(EMBEDDINGS_PREFIX))
        if not keys:
            raise LookupError(f"no stored embeddings in the artifact store of {self.region}")
        chunks = []
        names: dict[str, int] = {}
        as_of = 0.0
        position = 0
        for key in keys:
            body, metadata = self.store.get(key)
            vectors, chunk_names = unpack_chunk(body)
            chunks.append(vectors)
            for offset, name in enumerate(chunk_names):
                if name:
                    names[name] = position + offset
            position += len(vectors)
            as_of = max(as_of, float(metadata["created-at"]))
        index = build_index(np.concatenate(chunks))
        self.install(index, as_of, f"rebuilt from {len(keys)} embedding chunks", names)
        return self._restored("rebuild", started, as_of, f"{len(keys)} chunks")

    def _restored(self, method: str, started: float, as_of: float, source: str) -> JsonObject:
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
        self._ceiling = int(len(self.base) * _GROWTH)
        self._snapshot_of: float | None = None  # data_as_of of the newest snapshot

    def start(self) -> None:
        now = time.time()
        self.stores[self.primary].put(
            EMBEDDINGS_PREFIX + _stamp(now) + ".npz",
            pack_chunk(self.base, [""] * len(self.base)),
            {"created-at": f"{now:.3f}", "count": str(len(self.base))},
        )
        index = build_index(self.base)
        for name, service in self.services.items():
            copy = index if name == self.primary else faiss.clone_index(index)
            service.install(copy, now, "built at lab start", {})
        self._snapshot(self.services[self.primary])
        threading.Thread(target=self._write_loop, daemon=True, name="index-writer").start()
        threading.Thread(target=self._follow_loop, daemon=True, name="index-follower").start()

    def stop(self) -> None:
        self._stopping.set()
        for service in self.services.values():
            service.stop()

    def ports(self) -> dict[str, int]:
        return {name: service.port for name, service in self.services.items()}

    def standby_as_of(self, region: str) -> float | None:
        """How new the data is that ``region``'s index will serve once the other region
        is gone: what it has loaded, or the newest snapshot already replicated into its
        store (the follower loads that one within a second, fault or not)."""
        loaded = self.services[region].info()["data_as_of"]
        try:
            newest = self.stores[region].newest(SNAPSHOTS_PREFIX)
        except StorageError:
            newest = None
        stored = float(newest[1]["created-at"]) if newest else None
        known = [t for t in (loaded, stored) if t is not None]
        return max(known) if known else None

    def fail_region(self, region: str) -> None:
        self.services[region].drop("region down")
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
        """Store a batch of new documents, then index them; vectors written through the
        API since the last batch are stored with it."""
        if service.info()["ntotal"] >= self._ceiling:
            batch = 0  # the stream has run dry; API writes still need storing
        far = 60.0 + self._rng.normal(0.0, 1.0, size=(batch, DIMENSIONS))
        vectors = far.astype("float32")
        unsaved = service.take_unsaved()
        if not batch and not unsaved:
            return
        names = [""] * batch + [name for name, _ in unsaved]
        stored = np.concatenate([vectors, *[v[None, :] for _, v in unsaved]])
        now = time.time()
        try:
            self.stores[self.primary].put(
                EMBEDDINGS_PREFIX + _stamp(now) + ".npz",
                pack_chunk(stored, names),
                {"created-at": f"{now:.3f}", "count": str(len(stored))},
            )
        except StorageError:
            with service.lock:  # not stored: keep them for the next batch
                if service.index is not None:
                    service.unsaved[0:0] = unsaved
            raise
        with service.lock:
            if service.index is not None and batch:
                service.index.add(vectors)
                service.data_as_of = now

    def _snapshot(self, service: IndexService) -> None:
        with service.lock:
            if service.index is None or (
                service.data_as_of is not None and service.data_as_of == self._snapshot_of
            ):
                return  # nothing changed since the last snapshot
            data = pack_snapshot(service.index, service.names)
            as_of = service.data_as_of or time.time()
            ntotal = int(service.index.ntotal)
            self._snapshot_of = service.data_as_of
        self.stores[self.primary].put(
            SNAPSHOTS_PREFIX + _stamp(as_of) + ".npz",
            data,
            {"created-at": f"{as_of:.3f}", "ntotal": str(ntotal)},
        )

    def compact(self) -> None:
        """Lifecycle rule on the primary: merge all but the newest few chunks after the
        newest base into a new base chunk."""
        store = self.stores[self.primary]
        live = live_embedding_keys(store.keys(EMBEDDINGS_PREFIX))
        if len(live) < _COMPACT_FROM:
            return
        merged = live[:-3]
        vectors, names, as_of = [], [], 0.0
        for key in merged:
            body, metadata = store.get(key)
            chunk, chunk_names = unpack_chunk(body)
            vectors.append(chunk)
            names += chunk_names
            as_of = max(as_of, float(metadata["created-at"]))
        stamp = merged[-1][len(EMBEDDINGS_PREFIX) :][:15]
        store.put(
            EMBEDDINGS_PREFIX + stamp + COMPACTED,
            pack_chunk(np.concatenate(vectors), names),
            {"created-at": f"{as_of:.3f}", "count": str(len(names)), "compacts": str(len(merged))},
        )

    def expire_superseded(self, store: RegionStore) -> None:
        """Lifecycle rule on every region: chunks older than a base that has existed for
        a while are expired (every version), as are old versions of bases."""
        keys = sorted(store.keys(EMBEDDINGS_PREFIX))
        bases = [key for key in keys if key.endswith(COMPACTED)]
        settled = [b for b in bases if time.time() - _key_time(b) >= _SUPERSEDED_GRACE]
        if not settled:
            return
        store.expire([key for key in keys if key < settled[-1]])

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
            index, names = unpack_snapshot(body)
            service.install(index, as_of, f"replicated snapshot {newest[0]}", names)


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
            if self.path == "/upsert":
                self._upsert()
                return
            if self.path == "/fetch":
                self._fetch()
                return
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
            headers = {"X-Aidrill-Region": service.region}
            if as_of is not None:
                # How old the index data behind this answer is: the load records it.
                headers["X-Aidrill-Index-Age"] = f"{max(0.0, time.time() - as_of):.3f}"
            self.send_json(
                200,
                {"ids": ids, "region": service.region, "data_as_of": as_of},
                headers=headers,
            )

        def _upsert(self) -> None:
            try:
                body = self.read_json()
                name = str(body["id"])
                vector = [float(x) for x in body["vector"]]
            except (ValueError, KeyError, TypeError):
                self.send_json(400, {"error": "expected {'id': str, 'vector': [...]}"})
                return
            if len(vector) != DIMENSIONS or not name:
                self.send_json(400, {"error": f"a non-empty id and {DIMENSIONS} numbers"})
                return
            if not service.upsert(name, vector):
                self.send_json(503, {"error": f"no vector index loaded in {service.region}"})
                return
            self.send_json(200, {"id": name, "region": service.region})

        def _fetch(self) -> None:
            try:
                names = [str(n) for n in self.read_json()["ids"]][:_FETCH_LIMIT]
            except (ValueError, KeyError, TypeError):
                self.send_json(400, {"error": "expected {'ids': [...]}"})
                return
            found = service.fetch(names)
            if found is None:
                self.send_json(503, {"error": f"no vector index loaded in {service.region}"})
                return
            self.send_json(200, {"ids": found, "region": service.region})

    return IndexHandler
