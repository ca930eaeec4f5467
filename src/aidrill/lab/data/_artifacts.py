"""Model artifacts: versioned objects in the artifact store, verified by checksum.

The model is published to ``models/model.npz`` in the primary region's bucket with
its version and SHA-256 in the object metadata; replication carries it to the DR
region. Workers fetch it over the S3 API (a plain GET, path-style) at boot and refuse
an artifact whose bytes do not match its checksum.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aidrill._artifact import MODEL_KEY, ArtifactRefused, fetch_verified, sha256
from aidrill._json import JsonObject
from aidrill.lab.data._storage import RegionStore

__all__ = ["MODEL_KEY", "ArtifactRefused", "ModelArtifacts", "fetch_verified"]

Record = Callable[..., None]


@dataclass(frozen=True)
class _Version:
    """One version of the model object as the store lists it (a delete marker too)."""

    version_id: str
    latest: bool
    delete_marker: bool
    modified: datetime


class ModelArtifacts:
    """Publishing, the delete/overwrite faults, and recovery from an earlier version."""

    def __init__(self, primary: RegionStore, stores: dict[str, RegionStore], record: Record):
        self.primary = primary
        self.stores = stores
        self.record = record
        self.published: list[dict[str, str]] = []  # version, version_id, sha256

    def publish(self, body: bytes, version: str) -> str:
        checksum = sha256(body)
        created = time.time()
        version_id = self.primary.put(
            MODEL_KEY,
            body,
            {"version": version, "sha256": checksum, "created-at": f"{created:.3f}"},
        )
        entry = {"version": version, "version_id": version_id, "sha256": checksum}
        self.published.append(entry)
        self.record("model_published", region=self.primary.region, **entry)
        return version_id

    def delete(self, region: str, mode: str) -> JsonObject:
        store = self.stores[region]
        if mode == "delete":
            reply = store.client.delete_object(Bucket=store.bucket, Key=MODEL_KEY)
            result: JsonObject = {"delete_marker": reply.get("VersionId")}
        else:
            _, metadata = store.get(MODEL_KEY)
            version_id = store.put(MODEL_KEY, b"\x00 truncated upload \x00", metadata)
            result = {"overwritten_by": version_id}
        self.record("model_artifact_" + ("deleted" if mode == "delete" else "overwritten"),
                    region=region, **result)  # fmt: skip
        return result

    def versions(self, region: str) -> list[_Version]:
        store = self.stores[region]
        reply = store.client.list_object_versions(Bucket=store.bucket, Prefix=MODEL_KEY)
        found = [
            _Version(v["VersionId"], v["IsLatest"], False, v["LastModified"])
            for v in reply.get("Versions", [])
            if v["Key"] == MODEL_KEY
        ]
        found += [
            _Version(m["VersionId"], m["IsLatest"], True, m["LastModified"])
            for m in reply.get("DeleteMarkers", [])
            if m["Key"] == MODEL_KEY
        ]
        # Newest first; the current version (IsLatest) first among equal timestamps.
        return sorted(found, key=lambda v: (v.modified, v.latest), reverse=True)

    def recover(self, region: str) -> JsonObject:
        """Make the newest version that verifies the current one again (versioning saves it)."""
        started = time.perf_counter()
        store = self.stores[region]
        candidates = [v for v in self.versions(region) if not v.delete_marker]
        for version in candidates:
            body, metadata = store.get(MODEL_KEY, version.version_id)
            if metadata.get("sha256") != sha256(body):
                continue
            if version.latest:
                return {"restored": version.version_id, "already_current": True}
            new_id = store.put(MODEL_KEY, body, metadata)
            seconds = round(time.perf_counter() - started, 3)
            self.record(
                "model_artifact_recovered",
                region=region,
                restored_version=version.version_id,
                new_version_id=new_id,
                seconds=seconds,
            )
            return {"restored": version.version_id, "new_version_id": new_id}
        raise ArtifactRefused(f"no version of {MODEL_KEY} in {region} verifies; nothing to restore")

    def current_ok(self, region: str) -> bool:
        store = self.stores[region]
        try:
            fetch_verified(store.port, store.bucket, timeout=5.0)
        except (ArtifactRefused, OSError):
            return False
        return True
