"""The lab's moto server: the AWS twin's control plane answers one request at a time."""

from __future__ import annotations

import copy
import gc
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from aidrill.lab.data._storage import s3_client, spawn_moto_server
from aidrill.lab.data.s3server import serialized


def test_a_serialized_app_never_runs_two_requests_at_once() -> None:
    inside, overlaps = [0], [0]
    guard = threading.Lock()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with guard:
            inside[0] += 1
            overlaps[0] = max(overlaps[0], inside[0])
        time.sleep(0.02)
        with guard:
            inside[0] -= 1
        start_response("200 OK", [])
        return [b"ok"]

    wrapped = serialized(app)
    threads = [threading.Thread(target=lambda: wrapped({}, lambda *a: None)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps[0] == 1
    # and the same app unwrapped does overlap, so the check above can fail
    threads = [threading.Thread(target=lambda: app({}, lambda *a: None)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps[0] > 1


def test_a_serialized_moto_server_answers_concurrent_auto_scaling_calls(tmp_path: Path) -> None:
    process, port = spawn_moto_server(tmp_path / "moto.log", "moto", serialize=True)
    try:

        def client(service: str) -> Any:
            return boto3.client(
                service,
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name="us-east-1",
                aws_access_key_id="lab",
                aws_secret_access_key="lab",
                config=Config(retries={"max_attempts": 1, "mode": "standard"}),
            )

        client("ec2").create_launch_template(
            LaunchTemplateName="gpu", LaunchTemplateData={"ImageId": "ami-12c6146b"}
        )
        client("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName="gpu",
            LaunchTemplate={"LaunchTemplateName": "gpu"},
            MinSize=0,
            MaxSize=8,
            DesiredCapacity=2,
            AvailabilityZones=["us-east-1a"],
        )
        errors: list[str] = []

        def scale() -> None:
            asg = client("autoscaling")
            for n in range(20):
                try:
                    asg.set_desired_capacity(AutoScalingGroupName="gpu", DesiredCapacity=2 + n % 5)
                except Exception as exc:
                    errors.append(repr(exc))

        def read() -> None:
            ec2 = client("ec2")
            for _ in range(20):
                try:
                    ec2.describe_instances()
                except Exception as exc:
                    errors.append(repr(exc))

        threads = [threading.Thread(target=f) for f in (scale, read, read)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        group = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["gpu"])
        assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 2 + 19 % 5
    finally:
        process.kill()


def test_a_listings_copy_of_a_version_shares_its_bytes(monkeypatch: Any) -> None:
    from moto.s3.models import FakeKey

    from aidrill.lab.data import s3server

    monkeypatch.setattr(FakeKey, "__deepcopy__", s3server._copy_for_listing, raising=False)
    key = FakeKey("snapshot", b"x" * (1 << 20), account_id="123456789012", region_name="us-east-1")
    listed = copy.deepcopy([key])[0]
    assert listed is not key and listed._value_buffer is key._value_buffer
    listed.is_latest = False  # what moto's listing sets on its copies
    del listed
    gc.collect()
    assert key.value == b"x" * (1 << 20), "the copy closed the bytes it shared"
    key.dispose()


def test_listing_versions_leaves_every_stored_version_readable(tmp_path: Path) -> None:
    process, port = spawn_moto_server(tmp_path / "s3.log", "the S3 server")
    try:
        s3 = s3_client(port)
        s3.create_bucket(Bucket="snapshots")
        s3.put_bucket_versioning(Bucket="snapshots", VersioningConfiguration={"Status": "Enabled"})
        bodies = [bytes([n]) * (3 << 20) for n in range(3)]  # over moto's in-memory size
        versions = [s3.put_object(Bucket="snapshots", Key="index", Body=b)["VersionId"]
                    for b in bodies]  # fmt: skip
        s3.put_object(Bucket="snapshots", Key="model", Body=b"weights")
        for _ in range(10):  # each listing copies every version; the copies are dropped
            only = s3.list_object_versions(Bucket="snapshots", Prefix="model")["Versions"]
            assert [v["Key"] for v in only] == ["model"]
        listed = s3.list_object_versions(Bucket="snapshots", Prefix="index")["Versions"]
        assert [v["VersionId"] for v in listed] == versions[::-1]
        assert [v["IsLatest"] for v in listed] == [True, False, False]
        for version, body in zip(versions, bodies, strict=True):
            got = s3.get_object(Bucket="snapshots", Key="index", VersionId=version)
            assert got["Body"].read() == body
    finally:
        process.kill()
