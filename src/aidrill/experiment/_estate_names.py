"""Names an experiment gives the estate, checked offline against the plan: the Auto
Scaling groups and buckets of chaostoolkit-aws activities, the Deployments and
namespaces of chaostoolkit-kubernetes ones. A name the plan does not know (a typo, or
another team's group) is refused before anything runs, with the closest name the plan
has. Whether the resources exist is asked live, by the dry run and the run."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from aidrill.plan import Plan

_AWS_GROUP_ARGS = ("asg_names",)
_AWS_BUCKET_ARGS = ("bucket_name",)


def estate_name_problems(experiment: dict[str, Any], plan: Plan, target: str) -> list[str]:
    """One sentence per name the experiment uses that the plan does not."""
    activities = list(_activities(experiment))
    if target == "aws" and plan.aws is not None:
        return _aws_problems(activities, plan)
    if target == "kubernetes" and plan.kubernetes is not None:
        return _kubernetes_problems(activities, plan)
    return []


def _activities(experiment: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, module, arguments after the configuration's values) of each activity."""
    from chaoslib import substitute
    from chaoslib.configuration import load_configuration

    given = experiment.get("configuration")
    configuration = load_configuration(dict(given) if isinstance(given, dict) else {})
    hypothesis = experiment.get("steady-state-hypothesis")
    probes = hypothesis.get("probes") if isinstance(hypothesis, dict) else None
    for section, items in (
        ("steady-state-hypothesis", probes),
        ("method", experiment.get("method")),
        ("rollbacks", experiment.get("rollbacks")),
    ):
        for index, activity in enumerate(items if isinstance(items, list) else []):
            if not isinstance(activity, dict):
                continue
            provider = activity.get("provider")
            if not isinstance(provider, dict) or provider.get("type") != "python":
                continue
            arguments = provider.get("arguments")
            if not isinstance(arguments, dict):
                continue
            resolved = substitute(dict(arguments), configuration, {})
            where = f"{section}[{index}] {activity.get('name')}"
            yield where, str(provider.get("module", "")), resolved


def _unknown(kind: str, name: str, known: list[str], where: str) -> str:
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean {near[0]!r}?)" if near else f" (the plan has: {', '.join(known)})"
    return f"{where}: {kind} {name!r} is not one the plan names{hint}"


def _aws_problems(activities: list[tuple[str, str, dict[str, Any]]], plan: Plan) -> list[str]:
    assert plan.aws is not None
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
        for key in _AWS_GROUP_ARGS:
            for name in arguments.get(key) or []:
                if str(name) not in groups and str(name) not in allowed:
                    found.append(_unknown("Auto Scaling group", str(name), groups, where))
        for key in _AWS_BUCKET_ARGS:
            name = arguments.get(key)
            if name is not None and str(name) not in buckets and str(name) not in allowed:
                found.append(_unknown("bucket", str(name), buckets, where))
    return found


def _kubernetes_problems(
    activities: list[tuple[str, str, dict[str, Any]]], plan: Plan
) -> list[str]:
    assert plan.kubernetes is not None
    allowed = set(plan.allow.resources)
    regions = plan.kubernetes.regions.values()
    deployments = sorted({r.deployment for r in regions})
    namespaces = sorted({r.namespace for r in regions} | set(plan.allow.kubernetes_namespaces))
    found = []
    for where, module, arguments in activities:
        if not module.startswith("chaosk8s.deployment"):
            continue
        name, namespace = arguments.get("name"), arguments.get("ns")
        if name is not None and str(name) not in deployments and str(name) not in allowed:
            found.append(_unknown("Deployment", str(name), deployments, where))
        if namespace is not None and str(namespace) not in namespaces:
            found.append(_unknown("namespace", str(namespace), namespaces, where))
    return found
