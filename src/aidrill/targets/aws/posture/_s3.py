"""Bucket checks: versioning, replication to the DR region (with or without S3
Replication Time Control), object lock and MFA delete."""

from __future__ import annotations

from typing import Any

from aidrill.targets.aws.posture._reader import Missing, Reader

RTC_BOUND = 15 * 60.0  # S3 RTC replicates 99.99% of objects within 15 minutes


def versioning(reader: Reader, region: str, bucket: str) -> tuple[bool, dict[str, Any]]:
    reply = reader.call("s3", region, "GetBucketVersioning", Bucket=bucket)
    return reply.get("Status") == "Enabled", reply


def replication(
    reader: Reader, region: str, bucket: str, dr_region: str, dr_bucket: str | None
) -> tuple[str, str, dict[str, Any], bool]:
    """(status, why, evidence, time-controlled) of the bucket's replication to DR."""
    try:
        reply = reader.call("s3", region, "GetBucketReplication", Bucket=bucket)
    except Missing as exc:
        if exc.code == "ReplicationConfigurationNotFoundError":
            return "fail", f"{bucket} has no replication rule: no copy outside {region}", {}, False
        raise
    rules = reply.get("ReplicationConfiguration", {}).get("Rules", [])
    evidence = {"rules": rules}
    enabled = [r for r in rules if r.get("Status") == "Enabled"]
    if not enabled:
        return "fail", f"{bucket}'s replication rules are all disabled", evidence, False
    toward = []
    for rule in enabled:
        destination = str(rule.get("Destination", {}).get("Bucket", "")).rsplit(":", 1)[-1]
        if dr_bucket is not None:
            if destination == dr_bucket:
                toward.append(rule)
        elif _bucket_region(reader, region, destination) == dr_region:
            toward.append(rule)
    if not toward:
        wanted = dr_bucket or f"a bucket in {dr_region}"
        return "fail", f"no enabled rule of {bucket} replicates to {wanted}", evidence, False
    whole = [r for r in toward if _covers_everything(r)]
    if not whole:
        return "fail", f"{bucket}'s rules toward DR replicate only some prefixes", evidence, False
    broken = _destination_problem(reader, region, whole[0])
    if broken is not None:
        return "fail", f"{bucket} replicates to {broken}", evidence, False
    timed = any(
        (r.get("Destination", {}).get("ReplicationTime") or {}).get("Status") == "Enabled"
        for r in whole
    )
    target = dr_bucket or dr_region
    if timed:
        why = f"{bucket} replicates to {target} with Replication Time Control"
        return "pass", why, evidence, True
    why = f"{bucket} replicates to {target}, without Replication Time Control: no time bound"
    return "pass", why, evidence, False


def _destination_problem(reader: Reader, region: str, rule: dict[str, Any]) -> str | None:
    """Why a rule's destination cannot hold the copy: a bucket that does not exist, is
    not versioned (S3 replicates only into versioned buckets), or belongs to another
    account than the caller's. None: it can."""
    destination = rule.get("Destination", {})
    name = str(destination.get("Bucket", "")).rsplit(":", 1)[-1]
    account = destination.get("Account")
    mine = reader.account()
    if account and mine and str(account) != str(mine):
        return f"{name} in another account ({account}): no copy this account controls"
    dr_region = _bucket_region(reader, region, name)
    if dr_region is None:
        return f"{name}, which does not exist: nothing is copied"
    try:
        versioned, _ = versioning(reader, dr_region, name)
    except Missing:
        return f"{name}, which cannot be read"
    if not versioned:
        return f"{name}, which is not versioned: S3 cannot replicate into it"
    return None


def _covers_everything(rule: dict[str, Any]) -> bool:
    rule_filter = rule.get("Filter")
    if rule_filter is None:
        return not rule.get("Prefix")
    return rule_filter in ({}, {"Prefix": ""})


def _bucket_region(reader: Reader, region: str, bucket: str) -> str | None:
    try:
        reply = reader.call("s3", region, "GetBucketLocation", Bucket=bucket)
    except Missing:
        return None
    return reply.get("LocationConstraint") or "us-east-1"


def object_lock(reader: Reader, region: str, bucket: str) -> tuple[bool, dict[str, Any]]:
    try:
        reply = reader.call("s3", region, "GetObjectLockConfiguration", Bucket=bucket)
    except Missing as exc:
        if exc.code == "ObjectLockConfigurationNotFoundError":
            return False, {}
        raise
    config = reply.get("ObjectLockConfiguration", {})
    return config.get("ObjectLockEnabled") == "Enabled", config
