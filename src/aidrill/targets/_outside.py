"""Small clients the observer reaches a target's tiers with, as any outsider would."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import boto3
import redis
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from redis.backoff import NoBackoff
from redis.retry import Retry

from aidrill._artifact import ArtifactRefused, sha256
from aidrill.targets._endpoints import Address, ArtifactStore


def redis_at(address: Address, timeout: float = 1.0) -> redis.Redis:
    """One attempt per command: a drill must see a dead primary at once."""
    return redis.Redis(
        host=address.host,
        port=address.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def join(base: str, path: str) -> str:
    return base.rstrip("/") + path


def s3_for(store: ArtifactStore, timeout: float = 5.0) -> Any:
    keys = (
        {"aws_access_key_id": store.credentials[0], "aws_secret_access_key": store.credentials[1]}
        if store.credentials
        else {}
    )
    return boto3.client(
        "s3",
        endpoint_url=store.endpoint,
        region_name=store.region,
        config=Config(
            connect_timeout=1.0,
            read_timeout=timeout,
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
        ),
        **keys,
    )


def fetch_model(store: ArtifactStore, timeout: float = 5.0) -> dict[str, str]:
    """GET the current version of the model object and check it against the checksum
    the plan says it was published with (see ``ArtifactStore``)."""
    client = s3_for(store, timeout)
    extra = {"ChecksumMode": "ENABLED"} if store.checksum == "checksum-sha256" else {}
    try:
        reply = client.get_object(Bucket=store.bucket, Key=store.key, **extra)
        body = reply["Body"].read()
        expected, actual = _checksums(client, store, reply, body)
    except (BotoCoreError, ClientError) as exc:
        raise ArtifactRefused(f"model artifact unavailable: {exc}") from exc
    metadata = dict(reply.get("Metadata") or {})
    if expected is None or expected != actual:
        raise ArtifactRefused(
            f"model artifact s3://{store.bucket}/{store.key} (version "
            f"{metadata.get('version', reply.get('VersionId', '?'))}) does not match its "
            f"checksum ({store.checksum})"
        )
    return metadata


def _checksums(client: Any, store: ArtifactStore, reply: Any, body: bytes) -> tuple[Any, Any]:
    """(expected, actual) as the plan's checksum source reads them."""
    source, _, detail = store.checksum.partition(":")
    if source == "metadata":
        return dict(reply.get("Metadata") or {}).get(detail or "sha256"), sha256(body)
    if source == "sidecar":
        side = client.get_object(Bucket=store.bucket, Key=store.key + (detail or ".sha256"))
        text = side["Body"].read().decode("utf-8", "replace").split()
        return (text[0].lower() if text else None), sha256(body)
    if source == "checksum-sha256":
        return reply.get("ChecksumSHA256"), base64.b64encode(hashlib.sha256(body).digest()).decode()
    if source == "etag":
        etag = str(reply.get("ETag", "")).strip('"')
        return (None if "-" in etag else etag), hashlib.md5(body, usedforsecurity=False).hexdigest()
    raise ArtifactRefused(f"unknown checksum source {store.checksum!r}")


def model_versions(store: ArtifactStore) -> dict[str, Any]:
    """Every version of the model object in one region's bucket, with its metadata."""
    client = s3_for(store)
    try:
        reply = client.list_object_versions(Bucket=store.bucket, Prefix=store.key)
        versions = []
        for item in reply.get("Versions", []):
            if item["Key"] != store.key:
                continue
            head = client.head_object(
                Bucket=store.bucket, Key=store.key, VersionId=item["VersionId"]
            )
            meta = head.get("Metadata") or {}
            created = meta.get("created-at")
            versions.append(
                {
                    "version_id": item["VersionId"],
                    "latest": item["IsLatest"],
                    "version": meta.get("version"),
                    "source_version": meta.get("source-version"),
                    "sha256": meta.get("sha256"),
                    "created_at": float(created) if created else item["LastModified"].timestamp(),
                }
            )
    except (BotoCoreError, ClientError, OSError) as exc:
        return {"error": str(exc)[:200]}
    markers = [m["VersionId"] for m in reply.get("DeleteMarkers", []) if m["Key"] == store.key]
    return {"versions": versions, "delete_markers": markers}


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
