"""What each chaostoolkit-aws action of an experiment would touch, resolved from its
real filters with read-only calls and counted whole (GPU or not), against the plan.

Every resource an action reaches must be one the plan names: an instance of one of its
GPU Auto Scaling groups, one of those groups, one of its buckets, or an entry of
``allow.resources``. Anything else (a bastion in the same zone, another team's group) is
a refusal naming it. An action aidrill cannot resolve runs only with a scope its author
declared (the aidrill extension's ``scopes``); with neither it is refused. The table of
what is resolved how is in README ("Pointing aidrill at your AWS account").
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaoslib import substitute

from aidrill._arguments import Arguments
from aidrill._json import Configuration, Json, JsonObject
from aidrill.errors import CloudError
from aidrill.experiment import declared_scope, driver_region, extension_scopes, known_scope
from aidrill.targets._limits import apply_limits
from aidrill.targets._target import Resolved, method_actions, undeclared_action
from aidrill.targets.aws._described import FisTarget, FisTemplate, Group, Instance

if TYPE_CHECKING:
    from chaoslib.types import Experiment

    from aidrill.targets.aws._adapter import AwsTarget


def resolve_actions(target: AwsTarget, experiment: Experiment) -> list[Resolved]:
    configuration = _configuration(experiment)
    declared = extension_scopes(experiment)
    estates: dict[str, _Estate] = {}
    found = []
    for name, provider in method_actions(experiment):
        region = driver_region(experiment, provider) or target.plan.primary_region
        func = f"{provider.get('module')}.{provider.get('func')}"
        given = provider.get("arguments")
        substituted = substitute(dict(given) if isinstance(given, dict) else {}, configuration, {})
        arguments = Arguments(substituted, f"action {name!r}")
        scope = declared_scope(provider) or known_scope(provider)
        if scope is not None and scope.kind == "recovery":
            found.append(
                Resolved(name, f"a recovery step in {region} (takes nothing away)", region)
            )
            continue
        resolver = _RESOLVERS.get(func)
        if resolver is None:
            found.append(undeclared_action(name, func, region, declared.get(name)))
            continue
        estate = estates.setdefault(region, _Estate(target, region))
        found.append(resolver(estate, name, arguments))
    return apply_limits(target.plan, experiment, found)


def _configuration(experiment: Experiment) -> Configuration:
    """The experiment's configuration as chaoslib loads it (environment values read), so
    ``${gpu_group}`` in an argument resolves as it will at run time."""
    from chaoslib.configuration import load_configuration

    given = experiment.get("configuration")
    loaded: Configuration = load_configuration(dict(given) if isinstance(given, dict) else {})
    return loaded


@dataclass
class _Estate:
    """Read-only questions about one region of the estate, asked once each."""

    target: AwsTarget
    region: str
    _gpu: set[str] | None = None
    _groups: dict[str, Group] = field(default_factory=dict)

    @property
    def plan_groups(self) -> list[str]:
        regions = self.target.estate.regions
        return list(regions[self.region].gpu_groups) if self.region in regions else []

    @property
    def plan_buckets(self) -> set[str]:
        found: set[str] = set()
        for region in self.target.estate.regions.values():
            if region.artifact_bucket:
                found.add(region.artifact_bucket)
        for buckets in self.target.estate.posture.buckets.values():
            for bucket in buckets:
                found.add(bucket.bucket)
                if bucket.dr_bucket:
                    found.add(bucket.dr_bucket)
        return found

    @property
    def allowed(self) -> set[str]:
        return set(self.target.plan.allow.resources)

    def ec2(self) -> Any:
        return self.target.client("ec2", self.region)

    def autoscaling(self) -> Any:
        return self.target.client("autoscaling", self.region)

    def gpu_instances(self) -> set[str]:
        """Every live instance of the plan's GPU groups in this region."""
        if self._gpu is None:
            groups = self.groups(self.plan_groups)
            self._gpu = {m.id for g in groups.values() for m in g.members if not m.leaving}
        return self._gpu

    def groups(self, names: list[str]) -> dict[str, Group]:
        missing = [n for n in names if n not in self._groups]
        if missing:
            reply = self.autoscaling().describe_auto_scaling_groups(AutoScalingGroupNames=missing)
            for document in reply["AutoScalingGroups"]:
                group = Group.from_api(document)
                self._groups[group.name] = group
        return {n: self._groups[n] for n in names if n in self._groups}

    def all_group_names(self) -> list[str]:
        names: list[str] = []
        for page in self.autoscaling().get_paginator("describe_auto_scaling_groups").paginate():
            names += [g["AutoScalingGroupName"] for g in page["AutoScalingGroups"]]
        return names

    def instances(self, query: dict[str, list[str] | list[dict[str, Json]]]) -> list[Instance]:
        found: list[Instance] = []
        for page in self.ec2().get_paginator("describe_instances").paginate(**query):
            for reservation in page["Reservations"]:
                found += [i for i in map(Instance.from_api, reservation["Instances"]) if i.live]
        return found

    def unnamed_instances(self, ids: list[str]) -> list[str]:
        named = self.gpu_instances() | self.allowed
        return [i for i in ids if i not in named]

    def closest(self, name: str, choices: list[str]) -> str:
        near = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        return f" (the closest is {near[0]!r})" if near else ""


def _instance_refusal(estate: _Estate, matched: list[Instance]) -> str | None:
    unnamed = set(estate.unnamed_instances([i.id for i in matched]))
    if not unnamed:
        return None
    names = [i.label for i in matched if i.id in unnamed]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        f"it would touch {len(names)} instance(s) the plan does not name: {shown} "
        "(not in a GPU group of the plan, nor in allow.resources)"
    )


def _ec2_instances(estate: _Estate, name: str, arguments: Arguments, verb: str,
                   one: bool = False) -> Resolved:  # fmt: skip
    """``stop_instances``/``terminate_instances`` (every match) and ``stop_instance``/
    ``terminate_instance`` (one picked among the matches): given ids, or an AZ, or
    filters, exactly as chaostoolkit-aws reads them."""
    ids = arguments.texts("instance_ids") + arguments.texts("instance_id")
    filters = arguments.objects("filters")
    zone = arguments.text("az")
    if zone:
        filters.append({"Name": "availability-zone", "Values": [zone]})
    if not ids and not filters:
        return Resolved(name, f"nothing to {verb}: no ids, AZ or filters", estate.region,
                        refused="the action names no instance, AZ or filter")  # fmt: skip
    try:
        matched = estate.instances({"InstanceIds": ids} if ids else {"Filters": filters})
    except CloudError as exc:
        if ids and exc.code.startswith("InvalidInstanceID"):
            return Resolved(name, f"instances {', '.join(ids)} do not exist", estate.region,
                            refused=f"no such instance: {exc}")  # fmt: skip
        raise
    gpu = estate.gpu_instances()
    hit = [i for i in matched if i.id in gpu]
    chosen = min(1, len(hit)) if one else len(hit)
    share = chosen / len(gpu) if gpu and chosen else None
    others = len(matched) - len(hit)
    touches = (
        f"{'one of ' if one else ''}{len(matched)} instance(s) in {estate.region} {verb}: "
        f"{len(hit)} of the {len(gpu)} GPU instances of the plan"
        + (f", and {others} other instance(s)" if others else "")
    )
    if not matched:
        touches = f"no instance in {estate.region} matches: the action will fail, touching none"
    return Resolved(
        name,
        touches,
        estate.region,
        share,
        _instance_refusal(estate, matched),
        tuple(i.label for i in matched),
    )


def _group_instances(estate: _Estate, name: str, arguments: Arguments, verb: str) -> Resolved:
    """``terminate_random_instances``/``stop_random_instances``: groups by name or by
    tags; the in-service instances of each (in ``az`` if given: then every one of them)
    or ``instance_count``/``instance_percent`` of them, as chaostoolkit-aws counts."""
    groups, refusal = _named_groups(estate, arguments)
    if refusal is not None:
        return Resolved(name, f"groups that cannot be {verb}", estate.region, refused=refusal)
    gpu = estate.gpu_instances()
    candidates: list[str] = []
    hit = 0
    zone, percent = arguments.text("az"), arguments.number("instance_percent")
    for group in groups.values():
        serving = [m for m in group.members if m.in_service]
        if zone:
            serving = [m for m in serving if m.zone == zone]
            count = len(serving)
        elif percent is not None:
            count = int(len(serving) * percent / 100)
        else:
            count = arguments.whole("instance_count") or 0
        candidates += [m.id for m in serving]
        hit += min(count, len(serving))
    ids = candidates
    unnamed = estate.unnamed_instances(ids)
    share = hit / len(gpu) if gpu else None
    return Resolved(
        name,
        f"{hit} of {len(candidates)} in-service instances of {', '.join(groups)} "
        f"({estate.region}) {verb}",
        estate.region,
        share,
        f"instances the plan does not name: {', '.join(unnamed)}" if unnamed else None,
        tuple(ids),
    )


def _named_groups(estate: _Estate, arguments: Arguments) -> tuple[dict[str, Group], str | None]:
    """The groups an action names (or its tags match), each one the plan must name."""
    names = arguments.texts("asg_names")
    tags = arguments.objects("tags")
    if not names and tags:
        names = _groups_by_tags(estate, tags)
        if not names:
            return {}, f"no Auto Scaling group in {estate.region} carries the tags {tags}"
    if not names:
        return {}, "the action names no Auto Scaling group (asg_names or tags)"
    groups = estate.groups(names)
    missing = [n for n in names if n not in groups]
    if missing:
        hint = estate.closest(missing[0], estate.all_group_names())
        return {}, f"no Auto Scaling group {missing[0]!r} in {estate.region}{hint}"
    foreign = [n for n in names if n not in estate.plan_groups and n not in estate.allowed]
    if foreign:
        return {}, (
            f"Auto Scaling group(s) {', '.join(foreign)} are not the plan's GPU groups "
            f"({', '.join(estate.plan_groups) or 'none'}) nor in allow.resources"
        )
    return groups, None


def _groups_by_tags(estate: _Estate, tags: list[JsonObject]) -> list[str]:
    filters = []
    for tag in tags:
        filters += [{"Name": "key", "Values": [str(tag.get("Key"))]},
                    {"Name": "value", "Values": [str(tag.get("Value"))]}]  # fmt: skip
    found: set[str] = set()
    for page in estate.autoscaling().get_paginator("describe_tags").paginate(Filters=filters):
        found |= {t["ResourceId"] for t in page["Tags"]
                  if t["ResourceType"] == "auto-scaling-group"}  # fmt: skip
    return sorted(found)


def _group_level(estate: _Estate, name: str, arguments: Arguments, what: str) -> Resolved:
    """Actions on the groups themselves (suspend, resume, detach, change subnets)."""
    groups, refusal = _named_groups(estate, arguments)
    if refusal is not None:
        return Resolved(name, f"groups to be {what}", estate.region, refused=refusal)
    processes = ", ".join(arguments.texts("process_names")) or "every process"
    detail = f"{processes} of " if what == "suspended" else ""
    return Resolved(
        name,
        f"{detail}{', '.join(groups)} ({estate.region}) {what}: no instance removed",
        estate.region,
        resources=tuple(groups),
    )


def _bucket(estate: _Estate, bucket: str) -> str | None:
    """Refusal for a bucket the plan does not name or that does not exist."""
    if bucket not in estate.plan_buckets and bucket not in estate.allowed:
        return f"bucket {bucket!r} is not one the plan names (nor in allow.resources)"
    s3 = estate.target.client("s3", estate.region)
    try:
        s3.head_bucket(Bucket=bucket)
    except CloudError as exc:
        if exc.code in ("404", "NoSuchBucket", "NotFound"):
            return f"bucket {bucket!r} does not exist"
        raise
    return None


def _delete_object(estate: _Estate, name: str, arguments: Arguments) -> Resolved:
    bucket, key = str(arguments.text("bucket_name")), str(arguments.text("object_key"))
    where = f"s3://{bucket}/{key}"
    refusal = _bucket(estate, bucket)
    if refusal is not None:
        return Resolved(name, f"{where} deleted", estate.region, refused=refusal)
    s3 = estate.target.client("s3", estate.region)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except CloudError as exc:
        if exc.code not in ("404", "NoSuchKey", "NotFound"):
            raise
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, MaxKeys=1000).get(
            "Contents", [])]  # fmt: skip
        return Resolved(name, f"{where} deleted", estate.region,
                        refused=f"{where} does not exist{estate.closest(key, keys)}")  # fmt: skip
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    version = arguments.text("version_id")
    if version:
        kept = f"version {version} deleted for good"
    elif versioning == "Enabled":
        kept = "a delete marker: versioning keeps the earlier versions"
    else:
        kept = f"deleted for good: versioning is {(versioning or 'off').lower()} on {bucket}"
    return Resolved(name, f"{where} ({kept})", estate.region, resources=(where,))


def _toggle_versioning(estate: _Estate, name: str, arguments: Arguments) -> Resolved:
    bucket = str(arguments.text("bucket_name"))
    refusal = _bucket(estate, bucket)
    status = arguments.text("status", "toggled")
    return Resolved(name, f"versioning of {bucket} {status}", estate.region, refused=refusal,
                    resources=(bucket,))  # fmt: skip


def _fis(estate: _Estate, name: str, arguments: Arguments) -> Resolved:
    """A FIS template: each of its targets resolved as FIS selects them (resource ids,
    or tags and filters, then ALL / COUNT(n) / PERCENT(p)), each resource named by the
    plan; an action with no target (insufficient capacity) named by its zones."""
    template_id = arguments.text("experiment_template_id")
    fis = estate.target.client("fis", estate.region)
    try:
        document = fis.get_experiment_template(id=template_id)["experimentTemplate"]
    except CloudError as exc:
        return Resolved(name, f"FIS template {template_id}", estate.region,
                        refused=f"FIS template {template_id} cannot be read: {exc}")  # fmt: skip
    template = FisTemplate.from_api(document)
    parts, resources, refusals = [], [], []
    region = estate.region
    gpu = estate.gpu_instances()
    hit = 0
    for action in template.actions:
        action_id = action.action_id
        if action_id == "aws:ec2:api-insufficient-instance-capacity-error":
            zones = str(action.parameters.get("availabilityZoneIdentifiers", ""))
            region = next(
                (r.name for r in estate.target.plan.regions if zones.startswith(r.name)), region
            )
            parts.append(f"no GPU capacity in {zones} (no running instance is touched)")
            continue
        for target_name in action.targets:
            spec = template.targets.get(target_name) or FisTarget(resource_type=None)
            if spec.resource_type != "aws:ec2:instance":
                refusals.append(
                    f"FIS target {target_name} of type {spec.resource_type} is not one "
                    "aidrill resolves; declare the action's scope"
                )
                continue
            matched = _fis_instances(estate, spec)
            count = _selected(spec.selection, len(matched))
            if action_id in _REMOVES_INSTANCES:
                hit += min(count, len([i for i in matched if i.id in gpu]))
            resources += [i.label for i in matched]
            refusal = _instance_refusal(estate, matched)
            if refusal:
                refusals.append(refusal)
            parts.append(f"{action_id}: {count} of {len(matched)} instance(s)")
    share = hit / len(gpu) if gpu and hit else None
    return Resolved(
        name,
        f"FIS {template_id}: " + ("; ".join(parts) or "no action"),
        region,
        share,
        "; ".join(refusals) or None,
        tuple(resources),
    )


# FIS actions that take instances out of service (others slow or stress them).
_REMOVES_INSTANCES = {
    "aws:ec2:terminate-instances",
    "aws:ec2:stop-instances",
    "aws:ec2:reboot-instances",
    "aws:ec2:send-spot-instance-interruptions",
}


def _fis_instances(estate: _Estate, spec: FisTarget) -> list[Instance]:
    if spec.arns:
        return estate.instances({"InstanceIds": [a.rsplit("/", 1)[-1] for a in spec.arns]})
    filters: list[dict[str, Json]] = [{"Name": f"tag:{k}", "Values": [v]} for k, v in spec.tags]
    for item in spec.filters:
        if item.path == "State.Name":
            filters.append({"Name": "instance-state-name", "Values": list(item.values)})
        elif item.path == "Placement.AvailabilityZone":
            filters.append({"Name": "availability-zone", "Values": list(item.values)})
    return estate.instances({"Filters": filters}) if filters else estate.instances({})


def _selected(mode: str, total: int) -> int:
    if mode.startswith("COUNT(") and mode.endswith(")"):
        return min(total, int(mode[6:-1]))
    if mode.startswith("PERCENT(") and mode.endswith(")"):
        return int(total * float(mode[8:-1]) / 100)
    return total


def _suspend(estate: _Estate, name: str, arguments: Arguments) -> Resolved:
    return _group_level(estate, name, arguments, "suspended")


_Resolver = Callable[[_Estate, str, Arguments], Resolved]
_RESOLVERS: dict[str, _Resolver] = {
    "chaosaws.ec2.actions.stop_instances":
        lambda e, n, a: _ec2_instances(e, n, a, "stopped"),
    "chaosaws.ec2.actions.terminate_instances":
        lambda e, n, a: _ec2_instances(e, n, a, "terminated"),
    "chaosaws.ec2.actions.restart_instances":
        lambda e, n, a: _ec2_instances(e, n, a, "restarted"),
    "chaosaws.ec2.actions.stop_instance":
        lambda e, n, a: _ec2_instances(e, n, a, "stopped", one=True),
    "chaosaws.ec2.actions.terminate_instance":
        lambda e, n, a: _ec2_instances(e, n, a, "terminated", one=True),
    "chaosaws.asg.actions.terminate_random_instances":
        lambda e, n, a: _group_instances(e, n, a, "terminated"),
    "chaosaws.asg.actions.stop_random_instances":
        lambda e, n, a: _group_instances(e, n, a, "stopped"),
    "chaosaws.asg.actions.detach_random_instances":
        lambda e, n, a: _group_instances(e, n, a, "detached"),
    "chaosaws.asg.actions.suspend_processes": _suspend,
    "chaosaws.asg.actions.resume_processes":
        lambda e, n, a: _group_level(e, n, a, "resumed"),
    "chaosaws.asg.actions.change_subnets":
        lambda e, n, a: _group_level(e, n, a, "moved to other subnets"),
    "chaosaws.s3.actions.delete_object": _delete_object,
    "chaosaws.s3.actions.toggle_versioning": _toggle_versioning,
    "chaosaws.fis.actions.start_experiment": _fis,
}  # fmt: skip
RESOLVED_ACTIONS = tuple(sorted(_RESOLVERS))
