"""An AWS estate as a kind of target (entry point ``aws`` in ``aidrill.targets``): the
chaostoolkit-aws actions it knows, where they act, what the plan must name, and the
names an experiment may give the estate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidrill._arguments import Arguments
from aidrill._json import Provider
from aidrill._scope import FaultScope
from aidrill.experiment import unknown_name
from aidrill.kinds import TargetKind
from aidrill.plan import Plan
from aidrill.targets import Target

if TYPE_CHECKING:
    from chaoslib.types import Experiment


_GROUP_ARGS = ("asg_names",)
_BUCKET_ARGS = ("bucket_name",)

DRIVERS = {
    "chaosaws.asg.actions.terminate_random_instances": FaultScope("gpu-nodes", True),
    "chaosaws.asg.actions.stop_random_instances": FaultScope("gpu-nodes", True),
    "chaosaws.ec2.actions.stop_instances": FaultScope("region", True),
    "chaosaws.ec2.actions.terminate_instances": FaultScope("region", True),
    "chaosaws.asg.actions.suspend_processes": FaultScope("gpu-capacity", False),
    "chaosaws.fis.actions.start_experiment": FaultScope("gpu-capacity", False),
    "chaosaws.s3.actions.delete_object": FaultScope("model-artifacts", True),
    "chaosaws.ssm.actions.send_command": FaultScope("storage", False),
}


def driver_region(experiment: Experiment, provider: Provider, plan: Plan | None) -> str | None:
    """chaostoolkit-aws acts in its experiment's ``aws_region`` configuration (a
    literal or an environment variable), else ``AWS_REGION``."""
    configuration = experiment.get("configuration")
    value = configuration.get("aws_region") if isinstance(configuration, dict) else None
    if isinstance(value, dict) and value.get("type") == "env":
        value = os.environ.get(str(value.get("key")), value.get("default"))
    if isinstance(value, str) and value:
        return value
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def check_plan(plan: Plan) -> list[str]:
    if plan.aws is None:
        return ["target aws: add an aws section naming the estate"]
    missing = sorted({r.name for r in plan.regions} - set(plan.aws.regions))
    return [f"aws.regions: no endpoints for the plan's regions {missing}"] if missing else []


def estate_names(activities: list[tuple[str, str, Arguments]], plan: Plan) -> list[str]:
    """The Auto Scaling groups and buckets chaostoolkit-aws activities name."""
    if plan.aws is None:
        return []
    allowed = set(plan.allow.resources)
    groups = [g for r in plan.aws.regions.values() for g in r.gpu_groups]
    buckets = [r.artifact_bucket for r in plan.aws.regions.values() if r.artifact_bucket]
    for tier_buckets in plan.aws.posture.buckets.values():
        for bucket in tier_buckets:
            buckets += [bucket.bucket] + ([bucket.dr_bucket] if bucket.dr_bucket else [])
    found = []
    for where, module, arguments in activities:
        if not module.startswith("chaosaws"):
            continue
        for key in _GROUP_ARGS:
            for group in arguments.texts(key):
                if group not in groups and group not in allowed:
                    found.append(unknown_name("Auto Scaling group", group, groups, where))
        for key in _BUCKET_ARGS:
            named = arguments.text(key)
            if named is not None and named not in buckets and named not in allowed:
                found.append(unknown_name("bucket", named, buckets, where))
    return found


def make_target(plan: Plan, state_dir: Path | None) -> Target:
    from aidrill.targets.aws._adapter import AwsTarget

    return AwsTarget(plan)


def read_posture(plan: Plan) -> Any:
    from aidrill.targets.aws.posture import check_posture

    return check_posture(plan)


KIND = TargetKind(
    name="aws",
    target=make_target,
    summary="an AWS estate (EC2 Auto Scaling, S3, Route 53) through chaostoolkit-aws",
    drivers=DRIVERS,
    driver_modules=("chaosaws", "aidrill.targets.aws.actions"),
    driver_region=driver_region,
    check_plan=check_plan,
    estate_names=estate_names,
    posture=read_posture,
)
