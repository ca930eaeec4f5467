"""The model artifact convention aidrill checks from outside, on any S3 API.

A published model is the object ``models/model.npz`` of a versioned bucket, with its
version and SHA-256 in the object's metadata. A fetch is verified: bytes that do not
match their checksum are refused, as a model server refuses them. The lab publishes
this way and its GPU nodes fetch this way; a drill's observer checks the serving
region's copy the same way, whatever the target.
"""

from __future__ import annotations

import hashlib
import http.client

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MODEL_KEY = "models/model.npz"


class ArtifactRefused(Exception):
    """The artifact is missing or does not match its checksum."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_verified(
    port: int,
    bucket: str,
    timeout: float = 60.0,
    host: str = "127.0.0.1",
    credentials: tuple[str, str] = ("lab", "lab"),
    region: str = "us-east-1",
    key: str = MODEL_KEY,
) -> tuple[bytes, dict[str, str]]:
    """GET the current version of ``key`` (path-style, SigV4) and check its SHA-256."""
    path = f"/{bucket}/{key}"
    signed = AWSRequest(method="GET", url=f"http://{host}:{port}{path}")
    S3SigV4Auth(Credentials(*credentials), "s3", region).add_auth(signed)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict(signed.headers.items()))
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise ArtifactRefused(f"model artifact unavailable: HTTP {response.status}")
        metadata = {
            name[len("x-amz-meta-") :]: value
            for name, value in response.getheaders()
            if name.lower().startswith("x-amz-meta-")
        }
    finally:
        conn.close()
    expected = metadata.get("sha256")
    if expected is None or sha256(body) != expected:
        raise ArtifactRefused(
            f"model artifact version {metadata.get('version', '?')} is corrupt: its SHA-256 "
            f"does not match the checksum it was published with"
        )
    return body, metadata
