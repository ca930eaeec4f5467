"""The lab's stateful tiers together: artifact store, model artifacts, model registry,
feature store, vector index and pipelines, and what a region failure or a reset does to
all of them."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aidrill.lab._records import DataInfo, DataSnapshot, ReplicationSnapshot
from aidrill.lab.data._artifacts import ModelArtifacts
from aidrill.lab.data._features import FeatureStore
from aidrill.lab.data._pipelines import JOBS, Pipelines, checkpoint_prefix
from aidrill.lab.data._registry import ModelRegistry
from aidrill.lab.data._storage import RegionStore, Replicator, StorageError
from aidrill.lab.data._vectors import SNAPSHOTS_PREFIX, VectorTier
from aidrill.lab.network._proxy import ProxyHub
from aidrill.plan import LabSettings

Record = Callable[..., None]
_LIFECYCLE_INTERVAL = 10.0
_ARTIFACT_CHECK_EVERY = 2.0


class DataTiers:
    def __init__(
        self,
        primary: str,
        dr: str,
        settings: LabSettings,
        state_dir: Path,
        model_artifact: bytes,
        candidate_artifact: bytes,
        entities: dict[str, list[float]],
        record: Record,
    ) -> None:
        self.primary, self.dr = primary, dr
        self.record = record
        self.hub = ProxyHub()
        log_dir = state_dir / "logs"
        self.stores = _start_stores((primary, dr), self.hub, log_dir)
        for store in self.stores.values():
            store.create_bucket()
        self.stores[primary].replicate_to(self.stores[dr])
        self.replicator = Replicator(
            self.stores[primary], self.stores[dr], settings.replication_lag, record
        )
        self.artifacts = ModelArtifacts(self.stores[primary], self.stores, record)
        self.artifacts.publish(model_artifact, "1")
        self.registry = ModelRegistry(
            primary, dr, self.stores, state_dir, settings.registry_copy_interval, record
        )
        try:
            self.registry.start(candidate_artifact)
        except BaseException:
            for store in self.stores.values():
                store.stop()
            raise
        self.features = FeatureStore(
            primary, dr, self.stores, entities, self.hub, log_dir, settings.feature_refresh, record
        )
        self.feature_max_age = settings.feature_max_age
        self.vectors = VectorTier(
            primary,
            dr,
            self.stores,
            settings.index_size,
            settings.snapshot_interval,
            state_dir,
            record,
        )
        self.pipelines = Pipelines(primary, dr, self.stores, settings.checkpoint_interval, record)
        self.failed: set[str] = set()
        self._stopping = threading.Event()
        self._artifact_check: tuple[float, bool] = (float("-inf"), False)

    def start(self) -> None:
        threading.Thread(target=self._lifecycle, daemon=True, name="lifecycle").start()
        self.replicator.start()
        self.features.start()
        self.vectors.start()
        self.pipelines.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.artifacts.current_ok(self.dr):
            time.sleep(0.1)

    def _lifecycle(self) -> None:
        """Bucket lifecycle rules, as production sets them on both sides: keep the newest
        few index snapshots and checkpoints, compact embedding chunks and expire the
        compacted ones (replication never deletes versions, so without this the DR
        bucket would grow without bound)."""
        rules = [(SNAPSHOTS_PREFIX, 3)] + [(checkpoint_prefix(job), 5) for job in JOBS]
        while not self._stopping.wait(_LIFECYCLE_INTERVAL):
            if self.primary not in self.failed:
                with contextlib.suppress(*StorageError):
                    self.vectors.compact()
            for name, store in self.stores.items():
                if name in self.failed:
                    continue
                with contextlib.suppress(*StorageError):
                    self.vectors.expire_superseded(store)
                for prefix, keep in rules:
                    with contextlib.suppress(*StorageError):
                        store.prune(prefix, keep)

    def stop(self) -> None:
        self._stopping.set()
        self.pipelines.stop()
        self.replicator.stop()
        self.vectors.stop()
        self.features.stop()
        self.registry.stop()
        for store in self.stores.values():
            store.stop()
        self.hub.stop()

    def worker_args(self, region: str) -> list[str]:
        store = self.stores[region]
        return [
            "--s3-port", str(store.port),
            "--bucket", store.bucket,
            "--registry-port", str(self.registry.port(region)),
            "--features-port", str(self.features.endpoint_port),
            "--feature-max-age", str(self.feature_max_age),
        ]  # fmt: skip

    def info(self) -> DataInfo:
        """Endpoints for lab.json: what a prober outside the lab may reach."""
        return {
            "storage": {name: store.port for name, store in self.stores.items()},
            "buckets": {name: store.bucket for name, store in self.stores.items()},
            "features_port": self.features.endpoint_port,
            "feature_region_ports": {n: p.port for n, p in self.features.region_proxies.items()},
            "index_ports": self.vectors.ports(),
            "pipelines_port": self.pipelines.port,
            "index_queries": str(self.vectors.queries_path.resolve()),
            **self.registry.info(),
        }

    def snapshot(self) -> DataSnapshot:
        return {
            "replication": ReplicationSnapshot(
                **self.replicator.snapshot(), backlog_seconds=self.replicator.backlog_seconds()
            ),
            "features": self.features.snapshot(),
            "index": {name: s.info() for name, s in self.vectors.services.items()},
            "pipelines": self.pipelines.snapshot(),
            "registry": self.registry.snapshot(),
            "proxies": self.hub.snapshot(),
            "failed_regions": sorted(self.failed),
        }

    # -- region-wide faults ----------------------------------------------------------------
    def fail_region(self, region: str) -> None:
        other = self.dr if region == self.primary else self.primary
        self.failed.add(region)
        with self.replicator.copying:  # a copy in flight lands before the truth is taken
            self.stores[region].proxy.set_fault(mode="reset")
        # What the other region holds once this one is cut off is what it will serve.
        self.record(
            "vector_index_standby", region=other, data_as_of=self.vectors.standby_as_of(other)
        )
        self.features.region_proxies[region].set_fault(mode="reset")
        self.features.servers[region].kill()
        self.record("feature_server_lost", region=region)
        self.vectors.fail_region(region)
        self.pipelines.fail_region(region)
        self.registry.suspend(region)

    def restore_region(self, region: str) -> None:
        self.failed.discard(region)
        self.stores[region].proxy.clear()
        self.features.region_proxies[region].clear()
        self.features.restore_primary()
        if not self.features.rows_complete():
            self.features.rebuild_online()
        self.vectors.restore_region(region)
        self.pipelines.restore_region(region)
        self.registry.resume(region)

    def throttle(self, region: str, latency: float, bandwidth: float | None) -> None:
        self.stores[region].proxy.set_fault(latency=latency, bandwidth=bandwidth)
        self.record("storage_throttled", region=region, latency=latency, bandwidth=bandwidth)

    def unthrottle(self, region: str) -> None:
        if region not in self.failed:
            self.stores[region].proxy.clear()
        self.record("storage_unthrottled", region=region)

    def pause_replication(self, mode: str) -> None:
        self.replicator.pause(True)
        self.features.pause_link("pause" if mode == "pause" else "reset")

    def resume_replication(self) -> None:
        self.replicator.pause(False)
        self.features.resume_link()

    def reset(self) -> None:
        """Undo every data-tier fault: the lab's nominal state, as after ``lab up``."""
        for region in sorted(self.failed):
            self.restore_region(region)
        self.hub.clear_all()
        self.replicator.pause(False)
        self.features.restore_primary()
        if not self.features.rows_complete():
            self.features.rebuild_online()
        for name, service in self.vectors.services.items():
            if not service.info()["loaded"]:
                with contextlib.suppress(*StorageError, LookupError):
                    if name == self.primary:
                        service.restore_snapshot()
                    else:
                        service.rebuild_from_embeddings()
        for region in (self.primary, self.dr):
            if not self.artifacts.current_ok(region):
                with contextlib.suppress(Exception):
                    self.artifacts.recover(region)
        self.registry.reset()

    def is_nominal(self) -> bool:
        return not self.problems()

    def problems(self) -> list[tuple[str, str]]:
        """What keeps the data tiers from their nominal state, each with the tier it is
        about (``data:<tier>``); empty when nominal."""
        checks: list[tuple[str, Callable[[], bool], str]] = [
            ("data:regions", lambda: not self.failed, f"failed regions {sorted(self.failed)}"),
            ("data:replication", lambda: not self.replicator.state.paused,
             "artifact replication paused"),
            ("data:features", self.features.is_nominal,
             "feature store not at home with its replica"),
            ("data:vectors", self.vectors.is_nominal,
             "a vector index is not loaded or not ingesting"),
            ("data:pipelines", self.pipelines.is_nominal,
             "a pipeline is not running in the primary region"),
            ("data:artifacts", self._artifacts_current,
             "the current model artifact does not verify in every region"),
        ]  # fmt: skip
        found = [(tag, why) for tag, ok, why in checks if not ok()]
        return found + [("data:registry", why) for why in self.registry.problems()]

    def _artifacts_current(self) -> bool:
        """Both regions serve a verified model (re-checked at most every 2 s: each check
        downloads the artifact, and waits poll this ten times a second)."""
        checked_at, ok = self._artifact_check
        if time.monotonic() - checked_at >= _ARTIFACT_CHECK_EVERY:
            ok = all(self.artifacts.current_ok(region) for region in (self.primary, self.dr))
            self._artifact_check = (time.monotonic(), ok)
        return ok


def _start_stores(names: tuple[str, str], hub: ProxyHub, log_dir: Path) -> dict[str, RegionStore]:
    """Start both regions' S3 servers at once (each is a separate process)."""
    stores: dict[str, RegionStore] = {}
    errors: list[BaseException] = []

    def start(name: str) -> None:
        try:
            stores[name] = RegionStore(name, hub, log_dir)
        except BaseException as exc:  # reported below, from the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        for store in stores.values():
            store.stop()
        raise errors[0]
    return stores
