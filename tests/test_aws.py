"""Drilling AWS with chaostoolkit-aws, rehearsed on the lab's AWS twin (moto's server
over HTTP is the AWS endpoint: a test double of AWS)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from aidrill.lab import LabClient
from aidrill.plan import load_plan

from ._drill import fast_variant, result, run_with_env, truth_recovery_window, twin_env
from .conftest import REPO

AWS_EXPERIMENTS = sorted((REPO / "experiments/aws").glob("*.yaml"))


@pytest.fixture
def twin(lab: LabClient, workspace: Path) -> Iterator[dict[str, str]]:
    """The environment `aidrill lab status --env` prints, as a dict."""
    env = twin_env(lab.state_dir, "aws")
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    yield env


def _aws(env: dict[str, str], service: str, region: str = "us-east-1") -> Any:
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _estate(env: dict[str, str]) -> dict[str, Any]:
    """What a write would change: instance states, the groups, the model's versions."""
    ec2, asg, s3 = _aws(env, "ec2"), _aws(env, "autoscaling"), _aws(env, "s3")
    instances = sorted(
        (i["InstanceId"], i["State"]["Name"])
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    )
    groups = [
        (g["AutoScalingGroupName"], g["DesiredCapacity"], sorted(
            p["ProcessName"] for p in g.get("SuspendedProcesses") or []))
        for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    ]  # fmt: skip
    versions = s3.list_object_versions(Bucket="aidrill-lab-east", Prefix="models/")
    return {
        "instances": instances,
        "groups": groups,
        "versions": [v["VersionId"] for v in versions.get("Versions", [])],
        "fis": _aws(env, "fis").list_experiments().get("experiments", []),
    }


_run = run_with_env


def test_every_aws_experiment_validates_and_names_real_chaosaws_functions(
    lab: LabClient, twin: dict[str, str], workspace: Path
) -> None:
    import importlib

    for path in AWS_EXPERIMENTS:
        raw = yaml.safe_load(path.read_text())
        for activity in raw["method"] + raw.get("rollbacks", []):
            provider = activity["provider"]
            module = importlib.import_module(provider["module"])
            assert callable(getattr(module, provider["func"], None)), (path.name, provider)
    done = _run(workspace, twin, "validate", *map(str, AWS_EXPERIMENTS))
    assert done.returncode == 0, done.stdout + done.stderr
    chaos = Path(sys.executable).with_name("chaos")
    for path in AWS_EXPERIMENTS:
        command = [str(chaos), "--no-version-check", "validate", str(path)]
        checked = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_posture_reads_the_twin_read_only(
    lab: LabClient, twin: dict[str, str], workspace: Path
) -> None:
    """The lab's buckets are versioned and replicated, its GPU groups span two zones,
    and its DR region may grow to what failover needs; what moto lacks reads unknown."""
    before = _estate(twin)
    out = workspace / "posture"
    done = _run(workspace, twin, "posture", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["id"]: c for c in json.loads((out / "posture.json").read_text())["checks"]}
    for check_id in (
        "model-artifacts.versioning",
        "model-artifacts.replication",
        "inference.multi-az",
        "inference.dr-instance-types",
        "inference.dr-group-size",
    ):
        assert checks[check_id]["status"] == "pass", checks[check_id]
    assert checks["inference.dr-capacity"]["status"] == "unknown"
    assert _estate(twin) == before, "posture wrote to the estate"


def test_dry_run_resolves_every_action_and_changes_nothing(
    lab: LabClient, twin: dict[str, str], workspace: Path
) -> None:
    before = _estate(twin)
    done = _run(workspace, twin, "run", "--dry-run", *map(str, AWS_EXPERIMENTS))
    assert done.returncode == 0, done.stdout + done.stderr
    text = re.sub(r"[\s│┃]", "", done.stdout)  # a table cell wraps where the width falls
    assert "2of4in-serviceinstancesofaidrill-gpu-lab-east(us-east-1)terminated" in text
    assert "4instance(s)inus-east-1stopped:4ofthe4GPUinstancesoftheplan" in text
    assert "noGPUcapacityinus-west-2a,us-west-2b" in text
    assert "nothingwasinjected" in text
    assert _estate(twin) == before, "a dry run writes nothing"
    assert not (workspace / "reports" / "runs").exists()


def test_an_account_or_region_outside_the_allow_list_is_refused_before_any_write(
    lab: LabClient, twin: dict[str, str], workspace: Path
) -> None:
    plan = yaml.safe_load(Path(twin["AIDRILL_PLAN"]).read_text())
    plan["allow"]["aws_accounts"] = ["111122223333"]
    (workspace / "other-account.yaml").write_text(yaml.safe_dump(plan))
    plan["allow"]["aws_accounts"] = ["123456789012"]
    plan["allow"]["aws_regions"] = ["us-west-2"]
    (workspace / "other-region.yaml").write_text(yaml.safe_dump(plan))
    before = _estate(twin)
    experiment = str(REPO / "experiments/aws/region-failover.yaml")
    account = _run(workspace, twin, "run", "--plan", "other-account.yaml", experiment)
    assert account.returncode == 2, account.stdout + account.stderr
    assert "AWS account 123456789012 is not in the plan's allow-list" in " ".join(
        account.stderr.split()
    )
    region = _run(workspace, twin, "run", "--plan", "other-region.yaml", experiment)
    assert region.returncode == 2, region.stdout + region.stderr
    assert "AWS region us-east-1 is not in the plan's allow-list" in " ".join(region.stderr.split())
    assert _estate(twin) == before, "refused before any call that writes"


def twin_checks(env: dict[str, str]) -> list[str]:
    """The Route 53 health checks the twin's plan names, the primary's first."""
    regions = yaml.safe_load(Path(env["AIDRILL_PLAN"]).read_text())["aws"]["regions"]
    return [c for name in ("us-east-1", "us-west-2") for c in regions[name]["health-checks"]]


def _chaos_run(workspace: Path, env: dict[str, str], experiment: str) -> Any:
    chaos = Path(sys.executable).with_name("chaos")
    return subprocess.run(
        [str(chaos), "--no-version-check", "run", experiment],
        cwd=workspace, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["gpu-node-loss", "region-failover"])
def test_aws_experiments_run_valid_on_the_twin_against_the_labs_truth(
    name: str, lab: LabClient, twin: dict[str, str], workspace: Path
) -> None:
    """Each shipped AWS experiment (its fast variant: see ``fast_variant``) on the twin;
    gpu-node-loss through plain `chaos run`, which drives the twin unchanged."""
    experiment = fast_variant(workspace, f"experiments/aws/{name}.yaml")
    started = time.time()
    if name == "gpu-node-loss":
        done = _chaos_run(workspace, twin, experiment)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        killed = [r for r in lab.ground_truth(since=started) if r["kind"] == "node_killed"]
        assert len(killed) == 2 and all("EC2 instance" in r["reason"] for r in killed), (
            killed, done.stdout[-3000:])  # fmt: skip
    else:
        done = _run(workspace, twin, "run", experiment)
        assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (workspace / "reports/runs").iterdir()
    outcome = result(run_dir)
    assert outcome["valid"] is True, outcome["invalid_reasons"]
    inference = next(c for c in outcome["components"] if c["tier"] == "inference")
    assert inference["verdict"] == "met", inference
    truth = truth_recovery_window(lab, run_dir)
    measured = inference["achieved"]["rto_seconds"]
    assert truth is not None and truth[0] - 1.0 <= measured <= truth[1] + 1.0, (measured, truth)
    assert lab.problems() == [], "the rollbacks left the lab (and its twin) nominal"
    # The groups' health checks, polled beside the load (once a second): each sample
    # names the GPU groups' instances, and the blind time is measured from them and
    # from the groups' activities.
    polls = [json.loads(line) for line in (run_dir / "health.jsonl").read_text().splitlines()]
    groups = {g for r in yaml.safe_load(Path(twin["AIDRILL_PLAN"]).read_text())["aws"]["regions"]
              .values() for g in r["gpu-groups"]}  # fmt: skip
    assert len(polls) >= 5 and any(p["signals"] for p in polls), polls[:3]
    named = {n.split()[0] for p in polls for n in p["signals"] if not n.startswith("route 53")}
    assert named <= groups, named
    assert inference["achieved"]["blind"]["measured"] is True, inference["achieved"]["blind"]
    # The primary region's Route 53 health check (the twin answers it from the region's
    # balancer) said healthy before the fault; in a region failover it turns unhealthy,
    # and the blind time ends on the first health signal to turn (on the twin, the
    # groups' instance health usually turns first).
    primary = f"route 53 health check {twin_checks(twin)[0]} (us-east-1)"
    said = [p["signals"][primary] for p in polls if primary in p["signals"]]
    assert said and said[0] is True, polls[:3]
    if name == "region-failover":
        assert False in said, said
        blind = inference["achieved"]["blind"]
        assert blind["detected"] is True and blind["seconds"] <= 3.0, blind
    # The groups' own activity histories, read through the Auto Scaling API during the
    # run, are in the evidence: the replacements the group launched.
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    read = [e for e in events if e["kind"] == "target_activity"]
    launched = [
        e
        for e in read
        if e["source"].startswith("auto scaling group ") and e["status"] == "succeeded"
    ]
    assert launched, read
    # Where the RTO went: a launch that succeeded ends the provision phase when its
    # instance was in service, where the lab says the replacement's worker booted.
    phases = inference["achieved"].get("phases") or []
    t_fault = next(e["time"] for e in events if e["kind"] == "fault_injected")
    truth = lab.ground_truth(since=started)
    booted = [r["time"] for r in truth if r["kind"] == "node_booted"]
    for phase in phases:
        if phase["phase"].split("+")[-1] == "provision":
            boundary = t_fault + phase["from_fault_seconds"] + phase["seconds"]
            assert any(abs(t - boundary) <= 1.5 for t in booted), (phase, booted)
    if name == "gpu-node-loss":
        # Provision from the group's launches; load from the load's answers, which name
        # the node that served (the twin's instances are the lab's nodes): a
        # replacement's first answers, within a bucket of the lab admitting it.
        assert [p["phase"] for p in phases] == ["detect", "provision", "load", "warm"], phases
        admitted = [r["time"] for r in truth if r["kind"] == "node_healthy"]
        boundary = t_fault + phases[2]["from_fault_seconds"] + phases[2]["seconds"]
        assert any(abs(t - boundary) <= 1.5 for t in admitted), (phases[2], admitted)
        assert phases[2]["evidence"].startswith("the load's answers: first answer from node")
    plan = load_plan(twin["AIDRILL_PLAN"])
    assert plan.target == "aws" and outcome["target"] == "aws"
