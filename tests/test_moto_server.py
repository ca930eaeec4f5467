"""The lab's moto server: the AWS twin's control plane answers one request at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from aidrill.lab._storage import spawn_moto_server
from aidrill.lab.s3server import serialized


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
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
