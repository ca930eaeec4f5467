"""Small clients the observer reaches a target's tiers with, as any outsider would."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import boto3
import redis
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from redis.backoff import NoBackoff
from redis.retry import Retry

from aidrill._artifact import MODEL_KEY, ArtifactRefused, sha256
from aidrill.targets._endpoints import Address, ArtifactStore

HttpError = (OSError, http.client.HTTPException, ValueError)


def redis_at(address: Address, timeout: float = 1.0) -> redis.Redis:
    """One attempt per command: a drill must see a dead primary at once."""
    return redis.Redis(
        host=address.host,
        port=address.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def http_json(method: str, url: str, payload: Any = None, timeout: float = 1.0) -> tuple[int, Any]:
    """One JSON request; (0, None) when the endpoint does not answer."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                      timeout=timeout)  # fmt: skip
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    except HttpError:
        return 0, None
    finally:
        conn.close()


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
    """GET the current model version and check its SHA-256 against its metadata."""
    try:
        reply = s3_for(store, timeout).get_object(Bucket=store.bucket, Key=MODEL_KEY)
        body = reply["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        raise ArtifactRefused(f"model artifact unavailable: {exc}") from exc
    metadata = dict(reply.get("Metadata") or {})
    if metadata.get("sha256") != sha256(body):
        raise ArtifactRefused(
            f"model artifact version {metadata.get('version', '?')} is corrupt: its SHA-256 "
            "does not match the checksum it was published with"
        )
    return metadata


def model_versions(store: ArtifactStore) -> dict[str, Any]:
    """Every version of the model artifact in one region's bucket, with its metadata."""
    client = s3_for(store)
    try:
        reply = client.list_object_versions(Bucket=store.bucket, Prefix=MODEL_KEY)
        versions = []
        for item in reply.get("Versions", []):
            head = client.head_object(
                Bucket=store.bucket, Key=MODEL_KEY, VersionId=item["VersionId"]
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
    except (BotoCoreError, ClientError, OSError) as exc:
        return {"error": str(exc)[:200]}
    markers = [m["VersionId"] for m in reply.get("DeleteMarkers", [])]
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
