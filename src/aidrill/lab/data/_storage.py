"""The artifact store: an S3 API per region (moto server) and cross-region replication.

Each region has one versioned bucket behind the fault proxy. The primary bucket carries
a replication configuration naming the DR bucket; the :class:`Replicator` honours it
the way S3 does (new object versions are copied after a lag; delete markers only when
``DeleteMarkerReplication`` is enabled) and can be paused by a fault.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aidrill.lab._process import Child
from aidrill.lab._records import ReplicatorState
from aidrill.lab.network._proxy import FaultProxy, ProxyHub

Record = Callable[..., None]
StorageError = (BotoCoreError, ClientError, OSError)
_POLL = 0.25
_BOOT_TIMEOUT = 120.0  # moto's import alone takes seconds on a busy host
_RULES_FRESH_FOR = 5.0  # seconds a read replication configuration is reused


def bucket_name(region: str) -> str:
    return f"aidrill-{region}"


def s3_client(port: int, timeout: float = 5.0) -> BaseClient:
    """A boto3 S3 client for a lab endpoint on loopback (moto accepts any credentials)."""
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="lab",
        aws_secret_access_key="lab",
        config=Config(
            connect_timeout=1.0,
            read_timeout=timeout,
            retries={"max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


def spawn_moto_server(log_path: Path, what: str, serialize: bool = False) -> tuple[Child, int]:
    """moto's server in its own process (``aidrill.lab.data.s3server``) and the port it
    listens on, once it says it is ready; ``serialize`` runs one request at a time."""
    process = Child(
        [sys.executable, "-m", "aidrill.lab.data.s3server", *(["--serialize"] * serialize)],
        log_path,
    )
    line = process.ready_line(_BOOT_TIMEOUT)
    if len(line) != 2 or line[0] != "READY":
        process.kill()
        raise RuntimeError(f"{what} did not start; see {log_path}")
    return process, int(line[1])


class RegionStore:
    """One region's moto server process, its fault proxy and a client through the proxy."""

    def __init__(self, region: str, hub: ProxyHub, log_dir: Path) -> None:
        self.region = region
        self.bucket = bucket_name(region)
        self.process, self.backend_port = spawn_moto_server(
            log_dir / f"s3-{region}.log", f"the S3 server of {region}"
        )
        self.proxy: FaultProxy = hub.add(f"s3-{region}", self.backend_port)
        self.client = s3_client(self.proxy.port)

    @property
    def port(self) -> int:
        return self.proxy.port

    def create_bucket(self) -> None:
        self.client.create_bucket(Bucket=self.bucket)
        self.client.put_bucket_versioning(
            Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
        )

    def replicate_to(self, destination: RegionStore) -> None:
        self.client.put_bucket_replication(
            Bucket=self.bucket,
            ReplicationConfiguration={
                "Role": "arn:aws:iam::123456789012:role/aidrill-lab-replication",
                "Rules": [
                    {
                        "ID": f"to-{destination.region}",
                        "Priority": 1,
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "DeleteMarkerReplication": {"Status": "Disabled"},
                        "Destination": {"Bucket": f"arn:aws:s3:::{destination.bucket}"},
                    }
                ],
            },
        )

    def put(self, key: str, body: bytes, metadata: dict[str, str]) -> str:
        reply = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=metadata)
        return str(reply.get("VersionId"))

    def get(self, key: str, version: str | None = None) -> tuple[bytes, dict[str, str]]:
        extra = {"VersionId": version} if version else {}
        reply = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        return reply["Body"].read(), dict(reply.get("Metadata") or {})

    def newest(self, prefix: str) -> tuple[str, dict[str, str]] | None:
        """The key under ``prefix`` that sorts last (keys carry zero-padded times)."""
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        if not keys:
            return None
        key = max(keys)
        head = self.client.head_object(Bucket=self.bucket, Key=key)
        return key, dict(head.get("Metadata") or {})

    def keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    def prune(self, prefix: str, keep: int) -> None:
        """Remove every version of all but the newest ``keep`` keys under ``prefix``."""
        self.expire(self.keys(prefix)[:-keep])

    def expire(self, keys: list[str]) -> None:
        """Remove every version of each key (what a lifecycle expiration does)."""
        for key in keys:
            versions = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
            for item in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
                if item["Key"] == key:
                    self.client.delete_object(
                        Bucket=self.bucket, Key=key, VersionId=item["VersionId"]
                    )

    def stop(self) -> None:
        self.process.kill()


@dataclass
class _Pending:
    key: str
    version: str
    seen: float
    delete_marker: bool = False


@dataclass
class ReplicationState:
    paused: bool = False
    copied: int = 0
    errors: int = 0
    last_error: str | None = None
    pending: dict[str, _Pending] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)


class Replicator:
    """Copies new object versions from the source bucket to the bucket its replication
    configuration names, ``lag`` seconds after they appear."""

    def __init__(self, source: RegionStore, destination: RegionStore, lag: float, record: Record):
        self.source = source
        self.destination = destination
        self.lag = lag
        self.record = record
        self.state = ReplicationState()
        self.lock = threading.Lock()
        # Held for each copy: a region failure takes it, so a copy is either complete
        # before the source is cut off (and in the standby's ground truth) or never made.
        self.copying = threading.Lock()
        self._rules_cache: tuple[float, list[dict[str, Any]]] = (float("-inf"), [])
        self._stopping = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name="replicator").start()

    def stop(self) -> None:
        self._stopping.set()

    def pause(self, paused: bool) -> None:
        with self.lock:
            self.state.paused = paused
        self.record("s3_replication_paused" if paused else "s3_replication_resumed")

    def backlog_seconds(self) -> float:
        """Age of the oldest version not yet replicated (0 when replication is current)."""
        with self.lock:
            pending = [p.seen for p in self.state.pending.values() if not p.delete_marker]
        return round(max(0.0, time.time() - min(pending)), 3) if pending else 0.0

    def snapshot(self) -> ReplicatorState:
        with self.lock:
            return {
                "paused": self.state.paused,
                "copied": self.state.copied,
                "pending": len(self.state.pending),
                "errors": self.state.errors,
                "last_error": self.state.last_error,
                "lag_seconds": self.lag,
            }

    def _loop(self) -> None:
        while not self._stopping.wait(_POLL):
            try:
                self._scan()
                if not self.state.paused:
                    self._copy_due()
            except StorageError as exc:
                with self.lock:
                    self.state.errors += 1
                    self.state.last_error = str(exc)[:200]

    def _rules(self) -> list[dict[str, Any]]:
        """The enabled rules toward the destination, re-read every few seconds."""
        read_at, rules = self._rules_cache
        if time.monotonic() - read_at < _RULES_FRESH_FOR:
            return rules
        rules = self._read_rules()
        self._rules_cache = (time.monotonic(), rules)
        return rules

    def _read_rules(self) -> list[dict[str, Any]]:
        try:
            config = self.source.client.get_bucket_replication(Bucket=self.source.bucket)
        except ClientError:
            return []
        rules = config.get("ReplicationConfiguration", {}).get("Rules", [])
        return [
            r
            for r in rules
            if r.get("Status") == "Enabled"
            and r.get("Destination", {}).get("Bucket", "").endswith(f":::{self.destination.bucket}")
        ]

    def _scan(self) -> None:
        now = time.time()
        seen: set[str] = set()
        for rule in self._rules():
            prefix = (rule.get("Filter") or {}).get("Prefix", "")
            markers = (rule.get("DeleteMarkerReplication") or {}).get("Status") == "Enabled"
            paginator = self.source.client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.source.bucket, Prefix=prefix):
                found = [(v, False) for v in page.get("Versions", [])]
                if markers:
                    found += [(m, True) for m in page.get("DeleteMarkers", [])]
                with self.lock:
                    for item, is_marker in found:
                        version = item["VersionId"]
                        seen.add(version)
                        if version in self.state.done or version in self.state.pending:
                            continue
                        self.state.pending[version] = _Pending(item["Key"], version, now, is_marker)
        with self.lock:
            # Versions expired at the source are never listed again: forget them.
            self.state.done &= seen

    def _copy_due(self) -> None:
        now = time.time()
        with self.lock:
            due = sorted(
                (p for p in self.state.pending.values() if p.seen + self.lag <= now),
                key=lambda p: p.seen,
            )
        for item in due:
            if self._stopping.is_set() or self.state.paused:
                return
            try:
                with self.copying:
                    self._copy(item)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("NoSuchVersion", "NoSuchKey"):
                    raise
                # The version was removed at the source before it could be copied.
            with self.lock:
                self.state.pending.pop(item.version, None)
                self.state.done.add(item.version)
                self.state.copied += 1

    def _copy(self, item: _Pending) -> None:
        if item.delete_marker:
            self.destination.client.delete_object(Bucket=self.destination.bucket, Key=item.key)
            return
        body, metadata = self.source.get(item.key, item.version)
        metadata["source-version"] = item.version
        self.destination.put(item.key, body, metadata)
        if not item.key.startswith("index/embeddings/"):
            self.record(
                "object_replicated",
                key=item.key,
                version=item.version,
                created_at=metadata.get("created-at"),
            )
