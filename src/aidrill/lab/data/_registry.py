"""The model registry tier: one MLflow registry per region, replicated by database copy.

The primary region's registry takes every write (a model version registered, an alias
moved); the DR region's is a read-only replica whose SQLite database is replaced, every
``copy_interval``, by an online copy of the primary's (SQLite's backup API), the way a
team ships a registry database to its DR region. Whatever the primary took since the
last copy is lost with it. GPU nodes resolve the production model through their own
region's registry (``lab-model@production``).

The lab registers two versions at start: version 1 (the trained model, the artifact
``models/model.npz``) with the production alias, and version 2, a candidate whose
classes are off by one (a label-mapping bug that its checksum cannot catch). The alias
fault moves production to it; the loss fault kills the primary registry and deletes
its database.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aidrill._artifact import MODEL_KEY, sha256
from aidrill._json import Json, JsonObject
from aidrill.lab._http import get_json, post_json
from aidrill.lab._process import Child
from aidrill.lab._records import RegistryInfo, RegistrySnapshot
from aidrill.lab.data._storage import RegionStore, StorageError
from aidrill.lab.data.registry import API, RegistryError, resolve_alias

Record = Callable[..., None]
MODEL_NAME = "lab-model"
PRODUCTION = "production"
CANDIDATE_KEY = "models/candidates/model-2.npz"
_BOOT_TIMEOUT = 30.0


class _Server:
    """One registry process, restartable on the same port (nodes keep its address)."""

    def __init__(self, region: str, database: Path, log_dir: Path, replica: bool) -> None:
        self.region = region
        self.database = database
        self.log_path = log_dir / f"registry-{region}.log"
        self.replica = replica
        self.port = 0
        self.process: Child | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def start(self) -> None:
        self.process = Child(
            [sys.executable, "-m", "aidrill.lab.data.registry", "--region", self.region,
             "--database", str(self.database), "--port", str(self.port)]
            + (["--replica"] if self.replica else []),
            self.log_path,
        )  # fmt: skip
        words = self.process.ready_line(_BOOT_TIMEOUT)
        if words[:1] != ["READY"]:
            self.kill()
            raise RegistryError(
                f"the model registry of {self.region} did not start (see {self.log_path})"
            )
        self.port = int(words[1])

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def remove_database(self) -> None:
        """The database and SQLite's side files: gone, as after a lost disk."""
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)

    def answers(self) -> bool:
        try:
            status, _ = get_json("127.0.0.1", self.port, "/health", timeout=1.0)
        except OSError:
            return False
        return self.alive and status == 200


class ModelRegistry:
    def __init__(
        self,
        primary: str,
        dr: str,
        stores: dict[str, RegionStore],
        state_dir: Path,
        copy_interval: float,
        record: Record,
    ) -> None:
        self.primary, self.dr = primary, dr
        self.stores = stores
        self.copy_interval = copy_interval
        self.record = record
        log_dir = state_dir / "logs"
        self.servers = {
            region: _Server(region, state_dir / f"registry-{region}.db", log_dir, region == dr)
            for region in (primary, dr)
        }
        self.approved = "1"  # the version production must resolve to when nominal
        self.copied_at: float | None = None
        self.paused = False
        self._lock = threading.Lock()  # one copy, loss or restore at a time
        self._candidate = b""  # the bad candidate version's artifact, kept for a rebuild
        self._stopping = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, candidate: bytes) -> None:
        """Fresh databases, both registries at once, the two versions, the first copy."""
        self._candidate = candidate
        try:
            self._build()
        except RegistryError:
            self.stop()
            raise
        threading.Thread(target=self._copy_loop, daemon=True, name="registry-copy").start()

    def _build(self) -> None:
        with self._lock:  # no copy runs over the databases being replaced
            for server in self.servers.values():
                server.kill()
                server.remove_database()
        threads = [threading.Thread(target=s.start) for s in self.servers.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not all(s.alive for s in self.servers.values()):
            raise RegistryError("a model registry did not start")
        candidate = self._candidate
        self.stores[self.primary].put(
            CANDIDATE_KEY, candidate, {"version": "2", "sha256": sha256(candidate)}
        )
        _, metadata = self.stores[self.primary].get(MODEL_KEY)
        bucket = self.stores[self.primary].bucket
        self.call("registered-models/create", name=MODEL_NAME)
        self.register(f"s3://{bucket}/{MODEL_KEY}", metadata["sha256"], "the trained model")
        self.register(
            f"s3://{bucket}/{CANDIDATE_KEY}",
            sha256(candidate),
            "candidate: classes off by one (label-mapping bug)",
        )
        self.set_alias(self.approved)
        self.copy()

    def stop(self) -> None:
        self._stopping.set()
        for server in self.servers.values():
            server.kill()

    def port(self, region: str) -> int:
        return self.servers[region].port

    # -- calls to the primary registry --------------------------------------------------
    def call(self, path: str, **body: Json) -> JsonObject:
        port = self.servers[self.primary].port
        status, reply = post_json("127.0.0.1", port, f"{API}/{path}", body, timeout=10.0)
        if status != 200:
            raise RegistryError(f"registry {path} answered {status}: {reply}")
        return reply if isinstance(reply, dict) else {}

    def register(self, source: str, checksum: str, description: str) -> str:
        tags: list[Json] = [
            {"key": "sha256", "value": checksum},
            {"key": "description", "value": description},
        ]
        reply = self.call("model-versions/create", name=MODEL_NAME, source=source, tags=tags)
        created = reply.get("model_version")
        if not isinstance(created, dict) or "version" not in created:
            raise RegistryError(f"the registry created no model version: {reply}")
        version = str(created["version"])
        self.record("model_version_registered", region=self.primary, version=version, source=source)
        return version

    def set_alias(self, version: str) -> None:
        self.call("registered-models/alias", name=MODEL_NAME, alias=PRODUCTION, version=version)

    def production(self, region: str) -> str | None:
        """The version production resolves to in ``region`` (None: it does not)."""
        try:
            return resolve_alias(self.port(region), MODEL_NAME, PRODUCTION).version
        except (OSError, RegistryError, ValueError, KeyError):
            return None

    # -- replication --------------------------------------------------------------------
    def _copy_loop(self) -> None:
        while not self._stopping.wait(self.copy_interval):
            if not self.paused:
                with contextlib.suppress(sqlite3.Error, OSError):
                    self.copy()

    def copy(self, source: str | None = None, destination: str | None = None) -> float | None:
        """One online copy of ``source``'s database over ``destination``'s (primary to
        DR by default); the time it was taken, or None when the source is down."""
        source = source or self.primary
        destination = destination or self.dr
        with self._lock:
            origin = self.servers[source]
            if not origin.alive or not origin.database.exists():
                return None
            taken = time.time()
            _backup(origin.database, self.servers[destination].database)
            if source == self.primary:
                self.copied_at = taken
        self.record("model_registry_replicated", source=source, destination=destination,
                    as_of=round(taken, 3))  # fmt: skip
        return taken

    # -- faults and recovery ------------------------------------------------------------
    def lose(self, region: str) -> JsonObject:
        """The registry of ``region`` is gone: its process and its database."""
        with self._lock:
            server = self.servers[region]
            held = _contents(server.database)
            server.kill()
            server.remove_database()
        self.record("model_registry_lost", region=region, last_copied_at=self.copied_at, **held)
        return {"lost": region, "last_copied_at": self.copied_at, **held}

    def restore(self, region: str, source: str | None) -> JsonObject:
        """Bring ``region``'s registry back from ``source``'s copy (the other region by
        default); a registry that still answers is left alone."""
        server = self.servers[region]
        if server.answers() and server.database.exists():
            return {"already_serving": True}
        source = source or (self.dr if region == self.primary else self.primary)
        started = time.perf_counter()
        server.kill()
        with self._lock:  # no copy runs while the restored registry starts
            _backup(self.servers[source].database, server.database)
            server.start()
        restored = _contents(server.database)
        seconds = round(time.perf_counter() - started, 3)
        self.record("model_registry_restored", region=region, source=source, seconds=seconds,
                    **restored)  # fmt: skip
        return {"restored": region, "from": source, "seconds": seconds, **restored}

    def suspend(self, region: str) -> None:
        """A region failure: its registry stops answering (its database survives)."""
        with self._lock:
            self.servers[region].kill()
        self.record("model_registry_unreachable", region=region, last_copied_at=self.copied_at)

    def resume(self, region: str) -> None:
        server = self.servers[region]
        if not server.alive:
            server.start()
            self.record("model_registry_reachable", region=region)

    def move_alias(self, version: str | None) -> JsonObject:
        """Point production at ``version`` (the bad candidate by default) in the
        primary's registry, the only one that takes writes."""
        before = self.production(self.primary)
        target = version or "2"
        self.set_alias(target)
        self.record("model_alias_moved", region=self.primary, alias=PRODUCTION,
                    previous=before, version=target)  # fmt: skip
        return {"alias": PRODUCTION, "previous": before, "version": target}

    def restore_alias(self) -> JsonObject:
        if self.production(self.primary) == self.approved:
            return {"already_current": True, "version": self.approved}
        self.set_alias(self.approved)
        self.record("model_alias_restored", region=self.primary, alias=PRODUCTION,
                    version=self.approved)  # fmt: skip
        with contextlib.suppress(sqlite3.Error, OSError):
            self.copy()
        return {"alias": PRODUCTION, "version": self.approved}

    def reset(self) -> None:
        if not any(server.database.exists() for server in self.servers.values()):
            # Both registries lost, no copy left to restore from: build them again, as
            # `lab up` does (the same two versions, production on the approved one).
            # The build reads the model artifact: if that is lost too, the reset goes on
            # and the lab reports what is still off instead of the reset failing.
            self.paused = True
            with contextlib.suppress(RegistryError, sqlite3.Error, KeyError, *StorageError):
                self._build()
                self.record("model_registry_rebuilt", regions=sorted(self.servers))
        for region in (self.primary, self.dr):
            if not self.servers[region].answers():
                with contextlib.suppress(RegistryError, sqlite3.Error, OSError):
                    self.restore(region, None)
        self.paused = False
        with contextlib.suppress(RegistryError, OSError):
            self.restore_alias()

    # -- nominal ------------------------------------------------------------------------
    def is_nominal(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        found = []
        for region, server in self.servers.items():
            if not server.answers():
                found.append(f"the model registry of {region} does not answer")
                continue
            version = self.production(region)
            if version != self.approved:
                found.append(
                    f"{MODEL_NAME}@{PRODUCTION} resolves to {version} in {region}, "
                    f"not the approved version {self.approved}"
                )
        return found

    def info(self) -> RegistryInfo:
        return {
            "registry_ports": {region: s.port for region, s in self.servers.items()},
            "registry_model": f"{MODEL_NAME}@{PRODUCTION}",
        }

    def snapshot(self) -> RegistrySnapshot:
        return {
            "approved": self.approved,
            "copied_at": self.copied_at,
            "production": {region: self.production(region) for region in self.servers},
        }


def _backup(source: Path, destination: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(source, timeout=5.0)) as src,
        contextlib.closing(sqlite3.connect(destination, timeout=5.0)) as dst,
    ):
        src.backup(dst)


def _contents(database: Path) -> JsonObject:
    """What a registry database holds (ground truth, read directly)."""
    if not database.exists():
        return {"versions": 0, "newest_change_ms": None}
    with contextlib.closing(sqlite3.connect(database, timeout=5.0)) as db:
        try:
            versions, newest = db.execute(
                "SELECT COUNT(*), MAX(last_updated_time) FROM model_versions"
            ).fetchone()
            aliases = db.execute("SELECT COUNT(*) FROM registered_model_aliases").fetchone()[0]
        except sqlite3.Error:
            return {"versions": 0, "newest_change_ms": None}
    return {"versions": int(versions), "aliases": int(aliases), "newest_change_ms": newest}
