"""Chaos Toolkit actions on the embedded lab, each with its matching rollback.

Use them as python providers (``module: aidrill.lab.actions``). They find the lab
through the ``aidrill_state_dir`` configuration key (default: ``$AIDRILL_STATE_DIR``
or ``.aidrill``). Every fault is written to the lab's persisted fault ledger before it
lands; its rollback removes it, so a fault left by a killed run is always found.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from aidrill._scope import fault_scope
from aidrill.errors import LabError
from aidrill.lab._client import LabClient, default_state_dir

__all__ = [
    "exhaust_gpu_capacity",
    "fail_region",
    "kill_gpu_nodes",
    "restore_gpu_capacity",
    "restore_gpu_nodes",
    "restore_region",
]

Configuration = dict[str, Any] | None


def _client(configuration: Configuration) -> LabClient:
    state_dir = (configuration or {}).get("aidrill_state_dir")
    return LabClient(Path(state_dir) if state_dir else default_state_dir())


def _owner(configuration: Configuration) -> dict[str, Any]:
    """Who injects the fault, kept in the ledger so a killed run's faults are traced back."""
    config = configuration or {}
    return {
        "run_id": config.get("aidrill_run_id"),
        "run_dir": config.get("aidrill_run_dir"),
        "pid": os.getpid(),
    }


@fault_scope("gpu-nodes")
def kill_gpu_nodes(
    region: str,
    count: int | None = None,
    fraction: float | None = None,
    configuration: Configuration = None,
) -> dict[str, Any]:
    """Crash ``count`` GPU nodes (or ``fraction`` of them) in ``region`` with SIGKILL."""
    if (count is None) == (fraction is None):
        raise LabError("kill_gpu_nodes: give exactly one of count or fraction")
    if count is not None and count < 1:
        raise LabError(f"kill_gpu_nodes: count must be at least 1, got {count}")
    if fraction is not None and not 0 < fraction <= 1:
        raise LabError(f"kill_gpu_nodes: fraction must be in (0, 1], got {fraction}")
    return _client(configuration).call(
        "/faults/kill-nodes",
        region=region,
        count=count,
        fraction=fraction,
        max_fraction=(configuration or {}).get("aidrill_max_gpu_node_fraction"),
        owner=_owner(configuration),
    )


def restore_gpu_nodes(region: str, configuration: Configuration = None) -> dict[str, Any]:
    """Rollback: wait until ``region`` runs its desired GPU nodes again."""
    return _checked(
        _client(configuration).call("/rollbacks/restore-nodes", region=region),
        f"GPU nodes in {region}",
    )


@fault_scope("region")
def fail_region(
    region: str, hold: float | None = None, configuration: Configuration = None
) -> dict[str, Any]:
    """Take a whole region down: its nodes crash and its balancer stops serving.

    With ``hold`` (seconds) the action itself lasts that long, as a timed outage does;
    the region stays down until its rollback either way.
    """
    result = _client(configuration).call(
        "/faults/fail-region", region=region, owner=_owner(configuration)
    )
    if hold:
        time.sleep(hold)
    return result


def restore_region(region: str, configuration: Configuration = None) -> dict[str, Any]:
    """Rollback: bring ``region`` back and wait for the lab's nominal routing."""
    return _checked(
        _client(configuration).call("/rollbacks/restore-region", region=region), f"region {region}"
    )


@fault_scope("gpu-capacity", removes_serving=False)
def exhaust_gpu_capacity(region: str, configuration: Configuration = None) -> dict[str, Any]:
    """Leave ``region`` with no free GPU capacity: no new node can be provisioned there."""
    return _client(configuration).call(
        "/faults/exhaust-gpu-capacity", region=region, owner=_owner(configuration)
    )


def restore_gpu_capacity(region: str, configuration: Configuration = None) -> dict[str, Any]:
    """Rollback: give ``region`` its GPU quota back."""
    return _client(configuration).call("/rollbacks/restore-gpu-capacity", region=region)


def _checked(result: dict[str, Any], what: str) -> dict[str, Any]:
    if not result.get("restored"):
        raise LabError(f"rollback did not restore {what} within its time limit")
    return result
