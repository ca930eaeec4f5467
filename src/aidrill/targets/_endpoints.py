"""Where a run reaches a target from outside: the load's endpoint and each tier's."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from aidrill._http import HttpSettings, resolve_headers
from aidrill._json import JsonObject
from aidrill.errors import InputError
from aidrill.plan import Plan, ProtocolSettings, VectorStoreSettings


class DeclaresHttp(Protocol):
    """An estate's section of the plan that says how its endpoints are reached."""

    @property
    def headers(self) -> Mapping[str, Any]: ...
    @property
    def ca_bundle(self) -> str | None: ...
    @property
    def tls_verify(self) -> bool: ...


def http_settings(plan: Plan, estate: DeclaresHttp) -> HttpSettings:
    """The plan's headers (environment references read now) and TLS trust."""
    headers = resolve_headers(
        {k: v if isinstance(v, str) else v.model_dump() for k, v in estate.headers.items()}
    )
    bundle = str(plan.path(estate.ca_bundle)) if estate.ca_bundle else None
    return HttpSettings(headers, bundle, estate.tls_verify)


def vector_store_settings(settings: VectorStoreSettings | None) -> JsonObject | None:
    """The plan's vector database as the load asks it: its connection string read from
    the environment now where the plan names a variable."""
    if settings is None:
        return None
    resolved = settings.model_dump(exclude={"dsn"})
    if isinstance(settings.dsn, str):
        resolved["dsn"] = settings.dsn
    elif settings.dsn.key in os.environ:
        resolved["dsn"] = os.environ[settings.dsn.key]
    else:
        raise InputError(
            f"vector-store.dsn: the environment variable {settings.dsn.key} is not set",
            field="vector-store",
        )
    return resolved


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def of(cls, url: str, default_port: int = 80) -> Address:
        """``redis://host:6379`` or ``http://host:8080/path``: the host and port."""
        parts = urlsplit(url if "://" in url else f"tcp://{url}")
        return cls(parts.hostname or "127.0.0.1", parts.port or default_port)


@dataclass(frozen=True)
class ArtifactStore:
    """One region's model bucket. ``endpoint`` None: the AWS SDK's own resolution
    (``AWS_ENDPOINT_URL`` or the real service) with the default credential chain.
    ``key``: the published model's object; ``checksum``: where its expected checksum
    is read (``metadata:<name>`` a SHA-256 in the object's metadata, ``sidecar:<suffix>``
    a SHA-256 in the object ``<key><suffix>``, ``checksum-sha256`` the object's own
    ChecksumSHA256, ``etag`` its MD5 ETag)."""

    bucket: str
    region: str = "us-east-1"
    endpoint: str | None = None
    credentials: tuple[str, str] | None = None
    key: str = "models/model.npz"
    checksum: str = "metadata:sha256"


@dataclass(frozen=True)
class ReplicationReport:
    """A target's own account of its artifact replication, charted beside what aidrill
    measures (never used to measure anything)."""

    backlog_seconds: float | None = None
    paused: bool | None = None


@dataclass(frozen=True)
class Endpoints:
    """Everything the load and the observer call. A target builds it (the lab from its
    state directory, AWS and Kubernetes from the plan); nothing here knows which."""

    inference: str  # base URL the load and the inference checks call
    golden_set: Path
    primary: str
    dr: str
    index_queries: Path | None = None
    # The vector database the search series asks (``vector_store_settings``), else the
    # inference endpoint's POST /search.
    vector_store: JsonObject | None = None
    serving_health: str | None = None  # URL answering {"serving": [region, ...]}
    feature_store: Address | None = None  # the primary endpoint (canary writes go here)
    feature_regions: dict[str, Address] = field(default_factory=dict)  # per-region replicas
    index: dict[str, str] = field(default_factory=dict)  # region -> index service base URL
    pipelines: str | None = None  # URL of the jobs' published progress
    artifacts: dict[str, ArtifactStore] = field(default_factory=dict)
    registry: dict[str, str] = field(default_factory=dict)  # region -> model registry URL
    registry_model: str | None = None  # name@alias the serving nodes resolve
    # A target's own account of its replication, charted beside what is measured (the
    # lab's artifact backlog); never used to measure anything.
    replication: Callable[[], ReplicationReport] | None = None
    # Headers and TLS for every outside request (the plan's; the lab needs none).
    http: HttpSettings = field(default_factory=HttpSettings)
    # How the load, the inference checks and pre-flight ask the inference endpoint.
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    # The target's own health signals as aidrill can see them from outside (its
    # balancer's rotation, each node's health endpoint): name -> healthy. Polled beside
    # the load into health.jsonl; only evidence of what the health checks claimed.
    health_signals: Callable[[], dict[str, bool]] | None = None
    # How often: twice a second where a poll is cheap; a cloud API that rate-limits
    # its callers (and updates a health status no faster) is asked less often.
    health_interval: float = 0.5
