"""The blast radius of actions from the Chaos Toolkit drivers aidrill knows, read from
their arguments before anything runs. What can only be counted against the live
target (how many instances a filter matches) is resolved by the target at run start
and by ``--dry-run``; this is the part that needs no call."""

from __future__ import annotations

import os
from typing import Any

from aidrill._scope import FaultScope

_KNOWN: dict[str, FaultScope] = {
    "chaosaws.asg.actions.terminate_random_instances": FaultScope("gpu-nodes", True),
    "chaosaws.asg.actions.stop_random_instances": FaultScope("gpu-nodes", True),
    "chaosaws.ec2.actions.stop_instances": FaultScope("region", True),
    "chaosaws.ec2.actions.terminate_instances": FaultScope("region", True),
    "chaosaws.asg.actions.suspend_processes": FaultScope("gpu-capacity", False),
    "chaosaws.fis.actions.start_experiment": FaultScope("gpu-capacity", False),
    "chaosaws.s3.actions.delete_object": FaultScope("model-artifacts", True),
    "chaosaws.ssm.actions.send_command": FaultScope("storage", False),
}


def known_scope(provider: dict[str, Any]) -> FaultScope | None:
    """The scope of a known driver action (``module.func``), or None."""
    if provider.get("type") != "python":
        return None
    return _KNOWN.get(f"{provider.get('module')}.{provider.get('func')}")


def driver_region(experiment: dict[str, Any], provider: dict[str, Any]) -> str | None:
    """The region a chaostoolkit-aws action acts in: its experiment's ``aws_region``
    configuration (a literal or an environment variable), else ``AWS_REGION``."""
    module = str(provider.get("module", ""))
    if not module.startswith(("chaosaws", "aidrill.targets.aws_actions")):
        return None
    value = (experiment.get("configuration") or {}).get("aws_region")
    if isinstance(value, dict) and value.get("type") == "env":
        value = os.environ.get(str(value.get("key")), value.get("default"))
    if isinstance(value, str) and value:
        return value
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def driver_share(provider: dict[str, Any]) -> float | None:
    """The share of a group's GPU nodes an action names outright (a percentage)."""
    percent = (provider.get("arguments") or {}).get("instance_percent")
    if isinstance(percent, int | float) and not isinstance(percent, bool):
        return float(percent) / 100
    return None
