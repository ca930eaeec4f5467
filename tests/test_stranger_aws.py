"""An AWS estate aidrill did not build, on moto's server over HTTP (a test double of
AWS): its own names, two GPU Auto Scaling groups on g5 launch templates, a DR group that
cannot grow, a non-GPU bastion and another team's group in the same zone, buckets with
and without versioning. Seeded and varied; over every seed and experiment:

- a dry run changes nothing, and exits 2 exactly when the real run is refused;
- every refusal of the real run appears in the dry run;
- a real run that is refused changes nothing; the bastion always survives;
- no output ever holds a traceback.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner

from aidrill.cli.main import cli
from aidrill.lab.data._storage import spawn_moto_server

from .conftest import REPO

ACCOUNT = "123456789012"  # moto's
PRIMARY, DR = "us-east-1", "us-west-2"
SEEDS = range(4)


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    process, port = spawn_moto_server(log, "moto's server")
    endpoint = f"http://127.0.0.1:{port}"
    patch = pytest.MonkeyPatch()
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "AKIASTRANGER",
        "AWS_SECRET_ACCESS_KEY": "stranger-secret",
        "AWS_DEFAULT_REGION": PRIMARY,
        "AWS_REGION": PRIMARY,
    }.items():
        patch.setenv(key, value)
    patch.delenv("AWS_PROFILE", raising=False)
    try:
        yield endpoint
    finally:
        patch.undo()
        process.kill()


def _c(service: str, region: str = PRIMARY) -> Any:
    return boto3.client(service, region_name=region)


def build_estate(seed: int) -> dict[str, Any]:
    """A foreign estate for ``seed``: every name its own, the plan written from
    drplan.example.yaml's shape naming only the GPU groups and one bucket."""
    rng = random.Random(seed)
    team = rng.choice(["acme", "zeta", "orbit", "nimbus"]) + str(seed)
    # Each seed's estate alone on the server (moto's own reset endpoint).
    urllib.request.urlopen(
        urllib.request.Request(os.environ["AWS_ENDPOINT_URL"] + "/moto-api/reset", method="POST")
    ).close()
    ec2 = _c("ec2")
    asg = _c("autoscaling")
    zones = [f"{PRIMARY}a", f"{PRIMARY}b"]
    groups = []
    for n in (1, 2):
        name = f"{team}-gpu-serving-{n}"
        ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "g5.2xlarge"},
        )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": name},
            MinSize=0, MaxSize=8, DesiredCapacity=2, AvailabilityZones=zones,
            Tags=[{"Key": "team", "Value": team, "PropagateAtLaunch": True}],
        )  # fmt: skip
        groups.append(name)
    other = f"{team}-batch-workers"
    ec2.create_launch_template(
        LaunchTemplateName=other,
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.large"},
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=other, LaunchTemplate={"LaunchTemplateName": other},
        MinSize=0, MaxSize=4, DesiredCapacity=rng.randint(1, 2), AvailabilityZones=zones,
    )  # fmt: skip
    bastion = ec2.run_instances(
        ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
        Placement={"AvailabilityZone": zones[0]},
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": "Name", "Value": f"{team}-bastion"}]}],
    )["Instances"][0]["InstanceId"]  # fmt: skip
    dr_group = f"{team}-gpu-dr"
    _c("ec2", DR).create_launch_template(
        LaunchTemplateName=dr_group,
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "g5.2xlarge"},
    )
    _c("autoscaling", DR).create_auto_scaling_group(
        AutoScalingGroupName=dr_group, LaunchTemplate={"LaunchTemplateName": dr_group},
        MinSize=0, MaxSize=0, DesiredCapacity=0, AvailabilityZones=[f"{DR}a"],
    )  # fmt: skip
    bucket = f"{team}-models"
    s3 = _c("s3")
    s3.create_bucket(Bucket=bucket)
    versioned = rng.random() < 0.5
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="serving/current/model.safetensors", Body=b"weights")
    plan = yaml.safe_load((REPO / "drplan.example.yaml").read_text())
    plan["target"] = "aws"
    plan.pop("kubernetes", None)
    plan["regions"] = [{"name": PRIMARY, "role": "primary"}, {"name": DR, "role": "dr"}]
    plan["allow"] = {"targets": ["aws"], "aws_accounts": [ACCOUNT],
                     "aws_regions": [PRIMARY, DR]}  # fmt: skip
    plan["suites"] = {}
    plan["aws"] = {
        "accounts": [ACCOUNT],
        "inference": "http://127.0.0.1:9",  # nothing answers: a run never passes pre-flight
        "golden-set": "golden.json",
        "regions": {
            PRIMARY: {"gpu-groups": groups, "artifact-bucket": bucket,
                      "artifact-key": "serving/current/model.safetensors"},
            DR: {"gpu-groups": [dr_group]},
        },
    }  # fmt: skip
    return {"team": team, "groups": groups, "other": other, "bastion": bastion,
            "bucket": bucket, "versioned": versioned, "plan": plan, "zone": zones[0]}  # fmt: skip


def snapshot() -> dict[str, Any]:
    """What a write would change: instances and states, groups' sizes, bucket contents."""
    found: dict[str, Any] = {}
    for region in (PRIMARY, DR):
        for reservation in _c("ec2", region).describe_instances()["Reservations"]:
            for i in reservation["Instances"]:
                found[i["InstanceId"]] = i["State"]["Name"]
        for group in _c("autoscaling", region).describe_auto_scaling_groups()["AutoScalingGroups"]:
            found[group["AutoScalingGroupName"]] = (
                group["DesiredCapacity"], sorted(i["InstanceId"] for i in group["Instances"]),
                group.get("SuspendedProcesses"),
            )  # fmt: skip
    s3 = _c("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        versions = s3.list_object_versions(Bucket=bucket["Name"])
        found[bucket["Name"]] = sorted(
            (v["Key"], v["VersionId"]) for v in versions.get("Versions", [])
        ) + sorted(("marker", m["VersionId"]) for m in versions.get("DeleteMarkers", []))
    return found


_NEVER_HOLDS = {"type": "probe", "name": "never-holds", "tolerance": True,
                "provider": {"type": "python", "module": "os.path", "func": "exists",
                             "arguments": {"path": "/nonexistent/aidrill"}}}  # fmt: skip


def _experiment(name: str, module: str, func: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One action, and a steady state that never holds: a real run that is admitted
    gets as far as its steady state and injects nothing (this estate serves nothing)."""
    return {
        "version": "1.0.0",
        "title": name,
        "description": "a stranger's drill",
        "configuration": {"aws_region": PRIMARY},
        "extensions": [{"name": "aidrill", "components": ["inference"],
                        "test-type": "component", "target": "aws"}],
        "steady-state-hypothesis": {"title": "never", "probes": [_NEVER_HOLDS]},
        "method": [{"type": "action", "name": name,
                    "provider": {"type": "python", "module": module, "func": func,
                                 "arguments": arguments}}],
        "rollbacks": [],
    }  # fmt: skip


def experiments(estate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    az, groups = estate["zone"], estate["groups"]
    return {
        "az-terminate": _experiment(
            "az-terminate", "chaosaws.ec2.actions", "terminate_instances", {"az": az}),
        "az-stop": _experiment("az-stop", "chaosaws.ec2.actions", "stop_instances", {"az": az}),
        "half-of-one-group": _experiment(
            "half-of-one-group", "chaosaws.asg.actions", "terminate_random_instances",
            {"asg_names": [groups[0]], "instance_percent": 50}),
        "every-gpu-instance": _experiment(
            "every-gpu-instance", "chaosaws.asg.actions", "terminate_random_instances",
            {"asg_names": groups, "instance_percent": 100}),
        "another-teams-group": _experiment(
            "another-teams-group", "chaosaws.asg.actions", "terminate_random_instances",
            {"asg_names": [estate["other"]], "instance_count": 1}),
        "delete-the-model": _experiment(
            "delete-the-model", "chaosaws.s3.actions", "delete_object",
            {"bucket_name": estate["bucket"], "object_key": "serving/current/model.safetensors"}),
        "delete-a-missing-key": _experiment(
            "delete-a-missing-key", "chaosaws.s3.actions", "delete_object",
            {"bucket_name": estate["bucket"], "object_key": "serving/current/model.safetensor"}),
        "unresolvable": _experiment(
            "unresolvable", "chaosaws.rds.actions", "reboot_db_instance",
            {"db_instance_identifier": "orders"}),
    }  # fmt: skip


def _run(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["run", "--no-live", "--plan", "plan.yaml", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.output,
        result.exception,
    )
    text = result.output
    assert "Traceback" not in text
    return result.exit_code, flat(text)


def flat(text: str) -> str:
    """The output with tables' borders and every line break and space taken out: a cell
    wraps its text wherever the terminal's width falls."""
    return re.sub(r"[\s│┃┏┓┗┛┡┩└┘━─╇┳┻]", "", text)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_stranger_estate_is_touched_only_where_the_plan_says(
    moto: str, seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    estate = build_estate(seed)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(estate["plan"], sort_keys=False))
    (tmp_path / "golden.json").write_text(json.dumps({"samples": []}))
    decisions = {}
    for name, body in experiments(estate).items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(body, sort_keys=False))
        before = snapshot()
        dry_code, dry = _run(tmp_path, "--dry-run", str(path))
        assert snapshot() == before, f"{name}: the dry run changed the estate"
        assert dry_code in (0, 2), (name, dry)
        if dry_code == 2 or seed == 0:
            real_code, real = _run(tmp_path, str(path))
            assert (real_code == 2) == (dry_code == 2), (name, dry_code, real)
            assert snapshot() == before, f"{name}: the real run changed the estate"
        if dry_code == 2:
            reasons = real.split("error: ", 1)[-1]
            for reason in reasons.split("; "):
                assert flat(reason.split(":")[-1])[:40] in dry, (name, reason, dry)
        decisions[name] = (dry_code, dry)
    # What a stranger estate must refuse, whatever the seed:
    for refused in ("az-terminate", "az-stop", "another-teams-group", "delete-a-missing-key",
                    "unresolvable"):  # fmt: skip
        assert decisions[refused][0] == 2, (refused, decisions[refused][1])
    assert flat(f"{estate['bastion']} ({estate['team']}-bastion)") in decisions["az-terminate"][1]
    assert "theplandoesnotname" in decisions["az-stop"][1]
    assert "theclosestis'serving/current/model.safetensors'" in decisions["delete-a-missing-key"][1]
    assert decisions["half-of-one-group"][0] == 0, decisions["half-of-one-group"][1]
    assert "25%" in decisions["half-of-one-group"][1], "1 of the 4 GPU instances"
    assert decisions["every-gpu-instance"][0] == 2, "100% against the plan's 50%"
    claim = decisions["delete-the-model"][1]
    if estate["versioned"]:
        assert "versioningkeepstheearlierversions" in claim, claim
    else:
        assert "deletedforgood:versioningisoff" in claim, claim
    running = [i for i, state in snapshot().items() if i == estate["bastion"]]
    assert running and snapshot()[estate["bastion"]] == "running", "the bastion survives"


def test_a_typo_in_a_group_name_is_refused_offline_with_the_closest_name(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    estate = build_estate(99)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(estate["plan"], sort_keys=False))
    (tmp_path / "golden.json").write_text(json.dumps({"samples": []}))
    typo = estate["groups"][0].replace("serving", "servng")
    body = _experiment("typo", "chaosaws.asg.actions", "terminate_random_instances",
                       {"asg_names": [typo], "instance_count": 1})  # fmt: skip
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(body))
    result = CliRunner().invoke(cli, ["validate", "--plan", "plan.yaml", "typo.yaml"])
    assert result.exit_code == 2, result.output
    assert f"did you mean '{estate['groups'][0]}'" in " ".join(result.output.split())


def test_an_argument_of_the_wrong_type_is_one_line_naming_it(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person wrote ``instance_count: two``: the dry run says which action and which
    argument, exit 2, no traceback, nothing touched."""
    estate = build_estate(98)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(estate["plan"], sort_keys=False))
    (tmp_path / "golden.json").write_text(json.dumps({"samples": []}))
    body = _experiment("a-word-for-a-count", "chaosaws.asg.actions", "terminate_random_instances",
                       {"asg_names": [estate["groups"][0]], "instance_count": "two"})  # fmt: skip
    (tmp_path / "word.yaml").write_text(yaml.safe_dump(body))
    before = snapshot()
    code, text = _run(tmp_path, "--dry-run", "word.yaml")
    assert code == 2, text
    assert "action'a-word-for-a-count':argument'instance_count'mustbeawholenumber" in text, text
    assert snapshot() == before


@pytest.mark.parametrize("broken", ["no-credentials", "no-endpoint"])
def test_no_credentials_or_no_endpoint_is_one_line_and_exit_two(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    estate = build_estate(7 if broken == "no-credentials" else 8)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(estate["plan"], sort_keys=False))
    (tmp_path / "golden.json").write_text(json.dumps({"samples": []}))
    body = experiments(estate)["half-of-one-group"]
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(body))
    if broken == "no-credentials":
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        expected = "no AWS credentials were found"
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        expected = "the AWS endpoint does not answer"
    for args in (["--dry-run"], []):
        result = CliRunner().invoke(cli, ["run", "--no-live", "--plan", "plan.yaml", *args,
                                          "x.yaml"])  # fmt: skip
        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit)
        lines = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and expected in " ".join(result.output.split()), result.output
    posture = CliRunner().invoke(cli, ["posture", "--plan", "plan.yaml", "--out", "p"])
    assert posture.exit_code == 2 and expected in " ".join(posture.output.split())
    assert "Traceback" not in posture.output
    assert os.environ.get("AWS_ENDPOINT_URL"), "the module's moto endpoint is restored after"


def test_a_rollback_wait_that_gave_up_is_a_failed_rollback(moto: str) -> None:
    """chaostoolkit-aws's wait returns sys.maxsize when it gives up, and chaoslib calls
    that a success; aidrill reads the marker and names the group that never came back."""
    from chaosaws.asg.probes import wait_desired_equals_healthy

    from aidrill.run._session import _wait_that_timed_out

    estate = build_estate(11)
    group = estate["groups"][0]
    asg = _c("autoscaling")
    # One instance of the group unhealthy for good: the wait cannot end.
    member = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    instance = member["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    asg.set_instance_health(InstanceId=instance, HealthStatus="Unhealthy")
    arguments = {"asg_names": [group], "timeout": 2}
    output = wait_desired_equals_healthy(**arguments, configuration={"aws_region": PRIMARY})
    assert output == sys.maxsize, output
    activity = {"type": "probe", "name": "wait-for-the-group", "provider": {
        "type": "python", "module": "chaosaws.asg.probes",
        "func": "wait_desired_equals_healthy", "arguments": arguments}}  # fmt: skip
    reason = _wait_that_timed_out(activity, {"status": "succeeded", "output": output})
    assert reason is not None and group in reason and "never came back" in reason
    assert _wait_that_timed_out(activity, {"status": "succeeded", "output": 2}) is None


def test_auto_scaling_activities_are_the_targets_activities(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan's groups' activity histories, read-only: a launch that failed (and the
    cloud's reason) is a failed activity, one that succeeded a succeeded one; an older
    activity is not the run's. moto answers the call but keeps no history, so the
    histories come from botocore's Stubber (a test double of the API's answers) on
    the primary region's client; the DR region's group is read from moto's server."""
    from datetime import UTC, datetime, timedelta

    from botocore.stub import Stubber

    from aidrill.plan import load_plan
    from aidrill.targets.aws._adapter import AwsTarget
    from aidrill.targets.aws._errors import guarded

    estate = build_estate(12)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(estate["plan"]))
    target = AwsTarget(load_plan(tmp_path / "plan.yaml"))
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert target.activities(since.timestamp()) == [], "moto keeps no activity history"
    raw = target.raw_client("autoscaling", PRIMARY)
    stubber = Stubber(raw)
    why = "We currently do not have sufficient g5.2xlarge capacity in the AZ you requested"

    def entry(group: str, status: str, at: datetime, message: str = "") -> dict[str, Any]:
        said = {"StatusMessage": message} if message else {}
        return {"ActivityId": f"{group}-{status}", "AutoScalingGroupName": group,
                "Description": f"Launching a new EC2 instance ({status})", "Cause": "scaling",
                "StartTime": at, "StatusCode": status, **said}  # fmt: skip

    first, second = estate["groups"]
    stubber.add_response("describe_scaling_activities", {"Activities": [
        entry(first, "Failed", since + timedelta(seconds=20), why),
        entry(first, "Successful", since - timedelta(hours=2)),
    ]}, {"AutoScalingGroupName": first})  # fmt: skip
    stubber.add_response("describe_scaling_activities", {"Activities": [
        entry(second, "Successful", since + timedelta(seconds=30)),
    ]}, {"AutoScalingGroupName": second})  # fmt: skip
    with stubber:
        target._clients["autoscaling", PRIMARY] = guarded(raw, "autoscaling", PRIMARY)
        found = target.activities(since.timestamp())
    assert [(a.status, a.region, a.source) for a in found] == [
        ("failed", PRIMARY, f"auto scaling group {first}"),
        ("succeeded", PRIMARY, f"auto scaling group {second}"),
    ], found
    assert found[0].cause == why and "Launching a new EC2 instance" in found[0].action


def test_the_groups_health_checks_are_polled_as_the_group_reports_them(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The health series on AWS: each instance of the plan's GPU groups, healthy while
    its group reports it InService and Healthy; the estate's other group and its bastion
    are no signal; an instance the group marked Unhealthy says so at the next poll."""
    from aidrill.plan import load_plan
    from aidrill.targets.aws._adapter import AwsTarget

    estate = build_estate(21)
    check = _c("route53").create_health_check(CallerReference="stranger", HealthCheckConfig={
        "IPAddress": "127.0.0.1", "Port": 9, "Type": "HTTP", "ResourcePath": "/ping",
    })["HealthCheck"]["Id"]  # fmt: skip
    estate["plan"]["aws"]["regions"][PRIMARY]["health-checks"] = [check]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(estate["plan"]))
    endpoints = AwsTarget(load_plan(tmp_path / "plan.yaml")).endpoints()
    poll = endpoints.health_signals
    assert poll is not None and endpoints.health_interval == 1.0
    first = poll()
    # Two groups of two instances (the DR group at 0), and the Route 53 health check the
    # plan names (moto's checkers always report success).
    assert first.pop(f"route 53 health check {check} ({PRIMARY})") is True
    assert len(first) == 4 and all(first.values()), first
    assert {name.split()[0] for name in first} == set(estate["groups"])
    reply = _c("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=estate["groups"])
    instance = reply["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    _c("autoscaling").set_instance_health(InstanceId=instance, HealthStatus="Unhealthy")
    second = poll()
    assert [n for n, ok in second.items() if not ok] == [f"{estate['groups'][0]} {instance}"]
