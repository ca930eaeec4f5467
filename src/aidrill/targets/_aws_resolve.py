"""What each chaostoolkit-aws action of an experiment would touch, counted with
read-only describe calls, against the plan's limits (``aidrill run --dry-run`` prints
it; a run checks it before anything is injected)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chaoslib import substitute

from aidrill.experiment import declared_scope, driver_region, known_scope
from aidrill.targets._limits import apply_limits
from aidrill.targets._target import Resolved

if TYPE_CHECKING:
    from aidrill.targets.aws import AwsTarget


def resolve_actions(target: AwsTarget, experiment: dict[str, Any]) -> list[Resolved]:
    configuration = _configuration(experiment)
    found = []
    for activity in experiment.get("method") or []:
        if not isinstance(activity, dict) or activity.get("type") != "action":
            continue
        provider = activity.get("provider") or {}
        name = str(activity.get("name"))
        region = driver_region(experiment, provider) or target.plan.primary_region
        func = f"{provider.get('module')}.{provider.get('func')}"
        arguments = substitute(dict(provider.get("arguments") or {}), configuration, {})
        scope = declared_scope(provider) or known_scope(provider)
        if scope is not None and scope.kind == "recovery":
            found.append(
                Resolved(name, f"a recovery step in {region} (takes nothing away)", region)
            )
            continue
        if scope is None:
            found.append(Resolved(name, f"{func}: not a fault action aidrill knows", region))
            continue
        resolver = _RESOLVERS.get(func, _described)
        found.append(resolver(target, name, region, arguments))
    return apply_limits(target.plan, experiment, found)


def _configuration(experiment: dict[str, Any]) -> dict[str, Any]:
    """The experiment's configuration as chaoslib loads it (environment values read), so
    ``${gpu_group}`` in an argument resolves as it will at run time."""
    from chaoslib.configuration import load_configuration

    loaded: dict[str, Any] = load_configuration(dict(experiment.get("configuration") or {}))
    return loaded


def _terminate(target: AwsTarget, name: str, region: str, arguments: dict[str, Any]) -> Resolved:
    groups = list(arguments.get("asg_names") or [])
    size = sum(target.group_size(region, group) for group in groups)
    count = arguments.get("instance_count")
    percent = arguments.get("instance_percent")
    if count is None and percent is not None:
        count = int(size * float(percent) / 100)
    share = (count or 0) / size if size else None
    return Resolved(
        name,
        f"{count} of {size} GPU instances of {', '.join(groups)} ({region}) terminated",
        region,
        share,
    )


def _stop(target: AwsTarget, name: str, region: str, arguments: dict[str, Any]) -> Resolved:
    """``stop_instances`` given only ``az`` or ``filters`` stops every instance they
    match: count them, and how many of the region's GPU nodes that is."""
    ec2 = target.client("ec2", region)
    filters = list(arguments.get("filters") or [])
    if arguments.get("az"):
        filters.append({"Name": "availability-zone", "Values": [arguments["az"]]})
    ids = list(arguments.get("instance_ids") or [])
    query: dict[str, Any] = {"InstanceIds": ids} if ids else {"Filters": filters}
    reply = ec2.describe_instances(**query)
    matched = {
        i["InstanceId"]
        for r in reply["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    }
    gpu = _gpu_instances(target, region)
    hit = matched & gpu
    share = len(hit) / len(gpu) if gpu else None
    other = len(matched - gpu)
    touches = f"{len(hit)} of {len(gpu)} GPU instances in {region} stopped"
    if share == 1.0:
        touches = f"every GPU instance in {region} stopped ({len(hit)}): the region's inference"
    if other:
        touches += f", and {other} other instance(s)"
    return Resolved(name, touches, region, share)


def _gpu_instances(target: AwsTarget, region: str) -> set[str]:
    groups = target.estate.regions[region].gpu_groups if region in target.estate.regions else []
    if not groups:
        return set()
    reply = target.client("autoscaling", region).describe_auto_scaling_groups(
        AutoScalingGroupNames=groups
    )
    return {i["InstanceId"] for g in reply["AutoScalingGroups"] for i in g["Instances"]}


def _fis(target: AwsTarget, name: str, region: str, arguments: dict[str, Any]) -> Resolved:
    template_id = arguments.get("experiment_template_id")
    try:
        template = target.client("fis", region).get_experiment_template(id=template_id)
    except Exception as exc:  # an unknown template is what the table must say
        return Resolved(name, f"FIS template {template_id} cannot be read: {exc}", region)
    parts = []
    touched_region = region
    for action in template["experimentTemplate"].get("actions", {}).values():
        parameters = action.get("parameters") or {}
        if action.get("actionId") == "aws:ec2:api-insufficient-instance-capacity-error":
            zones = str(parameters.get("availabilityZoneIdentifiers", ""))
            touched_region = next(
                (r.name for r in target.plan.regions if zones.startswith(r.name)), region
            )
            parts.append(f"no GPU capacity in {zones} (no running instance is touched)")
        else:
            parts.append(f"{action.get('actionId')} {parameters.get('documentArn', '')}".strip())
    return Resolved(name, f"FIS {template_id}: " + "; ".join(parts), touched_region)


def _suspend(target: AwsTarget, name: str, region: str, arguments: dict[str, Any]) -> Resolved:
    groups = ", ".join(arguments.get("asg_names") or []) or "the tagged groups"
    processes = ", ".join(arguments.get("process_names") or []) or "every process"
    return Resolved(name, f"{processes} of {groups} ({region}) suspended: nothing removed", region)


def _delete(target: AwsTarget, name: str, region: str, arguments: dict[str, Any]) -> Resolved:
    bucket, key = arguments.get("bucket_name"), arguments.get("object_key")
    where = next(
        (n for n, r in target.estate.regions.items() if r.artifact_bucket == bucket), region
    )
    return Resolved(
        name,
        f"s3://{bucket}/{key} in {where} deleted (a delete marker; versioning keeps the "
        "earlier versions)",
        where,
    )


def _described(target: AwsTarget, name: str, region: str, arguments: dict[str, Any]) -> Resolved:
    shown = ", ".join(f"{k}={v}" for k, v in sorted(arguments.items()))
    return Resolved(name, f"{name} in {region} ({shown})", region)


_RESOLVERS = {
    "chaosaws.asg.actions.terminate_random_instances": _terminate,
    "chaosaws.asg.actions.stop_random_instances": _terminate,
    "chaosaws.ec2.actions.stop_instances": _stop,
    "chaosaws.fis.actions.start_experiment": _fis,
    "chaosaws.asg.actions.suspend_processes": _suspend,
    "chaosaws.s3.actions.delete_object": _delete,
}
