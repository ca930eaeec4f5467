"""Recovery steps on AWS that chaostoolkit-aws has no action for, as an operator would
take them (python providers: ``module: aidrill.targets.aws.actions``). They use boto3's
own resolution (``AWS_ENDPOINT_URL``, the credential chain, ``aws_region``)."""

from __future__ import annotations

import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from aidrill._artifact import MODEL_KEY, sha256
from aidrill._json import Configuration, JsonObject
from aidrill._scope import recovery_action
from aidrill.errors import DrillError

__all__ = ["recover_model_artifact"]


@recovery_action
def recover_model_artifact(
    bucket_name: str,
    object_key: str = MODEL_KEY,
    configuration: Configuration | None = None,
) -> JsonObject:
    """Make the newest version of ``object_key`` whose bytes match its SHA-256 metadata
    the current one again (versioning kept it; a delete marker or a corrupt upload
    hid it). Returns what was restored; fails when no version verifies."""
    region = (configuration or {}).get("aws_region")
    s3 = boto3.client("s3", region_name=region) if region else boto3.client("s3")
    started = time.perf_counter()
    try:
        listing = s3.list_object_versions(Bucket=bucket_name, Prefix=object_key)
        versions = sorted(
            (v for v in listing.get("Versions", []) if v["Key"] == object_key),
            key=lambda v: (v["LastModified"], v["IsLatest"]),
            reverse=True,
        )
        for version in versions:
            reply = s3.get_object(
                Bucket=bucket_name, Key=object_key, VersionId=version["VersionId"]
            )
            body = reply["Body"].read()
            metadata = dict(reply.get("Metadata") or {})
            if metadata.get("sha256") != sha256(body):
                continue
            if version["IsLatest"]:
                return {"restored": version["VersionId"], "already_current": True}
            put = s3.put_object(Bucket=bucket_name, Key=object_key, Body=body, Metadata=metadata)
            return {
                "restored": version["VersionId"],
                "new_version_id": put.get("VersionId"),
                "seconds": round(time.perf_counter() - started, 3),
            }
    except (BotoCoreError, ClientError) as exc:
        raise DrillError(f"cannot recover s3://{bucket_name}/{object_key}: {exc}") from exc
    raise DrillError(f"no version of s3://{bucket_name}/{object_key} verifies; nothing to restore")
