"""The blast radius of actions from the Chaos Toolkit drivers aidrill knows, read from
their arguments before anything runs. What can only be counted against the live
target (how many instances a filter matches) is resolved by the target at run start
and by ``--dry-run``; this is the part that needs no call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from aidrill._scope import FaultScope
from aidrill.plan import Plan

_KNOWN: dict[str, FaultScope] = {
    "chaosaws.asg.actions.terminate_random_instances": FaultScope("gpu-nodes", True),
    "chaosaws.asg.actions.stop_random_instances": FaultScope("gpu-nodes", True),
    "chaosaws.ec2.actions.stop_instances": FaultScope("region", True),
    "chaosaws.ec2.actions.terminate_instances": FaultScope("region", True),
    "chaosaws.asg.actions.suspend_processes": FaultScope("gpu-capacity", False),
    "chaosaws.fis.actions.start_experiment": FaultScope("gpu-capacity", False),
    "chaosaws.s3.actions.delete_object": FaultScope("model-artifacts", True),
    "chaosaws.ssm.actions.send_command": FaultScope("storage", False),
    "chaosk8s.node.actions.delete_nodes": FaultScope("gpu-nodes", True),
    "chaosk8s.node.actions.drain_nodes": FaultScope("gpu-nodes", True),
    "chaosk8s.node.actions.cordon_node": FaultScope("gpu-capacity", False),
    "chaosk8s.node.actions.uncordon_node": FaultScope("recovery", False),
    "chaosk8s.pod.actions.terminate_pods": FaultScope("gpu-nodes", True),
    "chaosk8s.pod.actions.delete_pods": FaultScope("gpu-nodes", True),
    "chaosk8s.deployment.actions.scale_deployment": FaultScope("region", True),
}
_KUBERNETES_MODULES = ("chaosk8s", "aidrill.targets.kubernetes_actions")
_KUBECONFIG_LIMIT = 1 << 20


def known_scope(provider: dict[str, Any]) -> FaultScope | None:
    """The scope of a known driver action (``module.func``), or None."""
    if provider.get("type") != "python":
        return None
    return _KNOWN.get(f"{provider.get('module')}.{provider.get('func')}")


def driver_region(
    experiment: dict[str, Any], provider: dict[str, Any], plan: Plan | None = None
) -> str | None:
    """The region a driver action acts in. chaostoolkit-aws: its experiment's
    ``aws_region`` configuration (a literal or an environment variable), else
    ``AWS_REGION``. chaostoolkit-kubernetes: the plan's region whose cluster is the
    kube context the action will use."""
    module = str(provider.get("module", ""))
    if module.startswith(_KUBERNETES_MODULES):
        context = driver_context(experiment, provider)
        estate = plan.kubernetes if plan is not None else None
        if estate is None or context is None:
            return None
        return next((n for n, r in estate.regions.items() if r.context == context), None)
    if not module.startswith(("chaosaws", "aidrill.targets.aws_actions")):
        return None
    configuration = experiment.get("configuration")
    value = configuration.get("aws_region") if isinstance(configuration, dict) else None
    if isinstance(value, dict) and value.get("type") == "env":
        value = os.environ.get(str(value.get("key")), value.get("default"))
    if isinstance(value, str) and value:
        return value
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def driver_context(experiment: dict[str, Any], provider: dict[str, Any]) -> str | None:
    """The kube context a chaostoolkit-kubernetes action will use, as it picks one: a
    ``KUBERNETES_CONTEXT`` in the secrets it references, else the environment's, else
    the kubeconfig's current context."""
    if not str(provider.get("module", "")).startswith(_KUBERNETES_MODULES):
        return None
    secrets = experiment.get("secrets") or {}
    keys = provider.get("secrets")
    for key in keys if isinstance(keys, list) else []:
        entry = secrets.get(key) if isinstance(secrets, dict) and isinstance(key, str) else None
        value = entry.get("KUBERNETES_CONTEXT") if isinstance(entry, dict) else None
        if isinstance(value, dict) and value.get("type") == "env":
            value = os.environ.get(str(value.get("key")))
        if isinstance(value, str) and value:
            return value
    return os.environ.get("KUBERNETES_CONTEXT") or kubeconfig_current_context()


def kubeconfig_current_context() -> str | None:
    """``current-context`` of the kubeconfig the official client reads (the first file
    of ``KUBECONFIG``, else ``~/.kube/config``); None when there is none."""
    paths = os.environ.get("KUBECONFIG", "").split(os.pathsep)
    path = Path(paths[0]).expanduser() if paths[0] else Path.home() / ".kube" / "config"
    try:
        if not path.is_file() or path.stat().st_size > _KUBECONFIG_LIMIT:
            return None
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    current = document.get("current-context") if isinstance(document, dict) else None
    return str(current) if current else None


def driver_share(provider: dict[str, Any]) -> float | None:
    """The share of a group's GPU nodes an action names outright (a percentage)."""
    arguments = provider.get("arguments")
    percent = arguments.get("instance_percent") if isinstance(arguments, dict) else None
    if isinstance(percent, int | float) and not isinstance(percent, bool):
        return float(percent) / 100
    return None
