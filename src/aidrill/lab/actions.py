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
from typing import TypeAlias

from aidrill._durations import parse_duration
from aidrill._json import JsonObject
from aidrill._scope import fault_scope, recovery_action, setup_action
from aidrill.errors import LabError
from aidrill.lab.control._client import LabClient, default_state_dir

__all__ = [
    "degrade_gpu",
    "delete_model_artifact",
    "delete_vector_index",
    "disable_outlier_ejection",
    "drop_online_features",
    "enable_outlier_ejection",
    "exhaust_gpu_capacity",
    "fail_feature_store_primary",
    "fail_region",
    "heal_gpu_nodes",
    "kill_gpu_nodes",
    "lie_about_health",
    "lose_model_registry",
    "move_model_alias",
    "pause_replication",
    "rebuild_online_features",
    "recover_model_artifact",
    "restore_feature_store_primary",
    "restore_gpu_capacity",
    "restore_gpu_nodes",
    "restore_model_alias",
    "restore_model_registry",
    "restore_region",
    "restore_vector_index",
    "resume_replication",
    "serve_wrong_model",
    "slow_drip",
    "stick_loading",
    "throttle_storage",
    "unthrottle_storage",
]

Configuration: TypeAlias = "JsonObject | None"  # Chaos Toolkit's configuration, loaded


def _client(configuration: Configuration) -> LabClient:
    state_dir = (configuration or {}).get("aidrill_state_dir")
    return LabClient(Path(str(state_dir)) if state_dir else default_state_dir())


def _owner(configuration: Configuration) -> JsonObject:
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
) -> JsonObject:
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


def restore_gpu_nodes(region: str, configuration: Configuration = None) -> JsonObject:
    """Rollback: wait until ``region`` runs its desired GPU nodes again."""
    return _checked(
        _client(configuration).call("/rollbacks/restore-nodes", region=region),
        f"GPU nodes in {region}",
    )


@fault_scope("region")
def fail_region(
    region: str, hold: float | None = None, configuration: Configuration = None
) -> JsonObject:
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


def restore_region(region: str, configuration: Configuration = None) -> JsonObject:
    """Rollback: bring ``region`` back and wait for the lab's nominal routing."""
    return _checked(
        _client(configuration).call("/rollbacks/restore-region", region=region), f"region {region}"
    )


@fault_scope("gpu-capacity", removes_serving=False)
def exhaust_gpu_capacity(region: str, configuration: Configuration = None) -> JsonObject:
    """Leave ``region`` with no free GPU capacity: no new node can be provisioned there."""
    return _client(configuration).call(
        "/faults/exhaust-gpu-capacity", region=region, owner=_owner(configuration)
    )


def restore_gpu_capacity(region: str, configuration: Configuration = None) -> JsonObject:
    """Rollback: give ``region`` its GPU quota back."""
    return _client(configuration).call("/rollbacks/restore-gpu-capacity", region=region)


# -- data tiers --------------------------------------------------------------------------


@fault_scope("feature-store")
def fail_feature_store_primary(region: str, configuration: Configuration = None) -> JsonObject:
    """Crash the feature store's primary Redis in ``region`` (it must be the primary);
    the lab's supervisor promotes the replica in the other region."""
    client = _client(configuration)
    active = client.data()["features"]["active"]
    if active != region:
        raise LabError(f"the feature store's primary is in {active}, not in {region}")
    return client.call("/faults/fail-feature-primary", owner=_owner(configuration))


def restore_feature_store_primary(
    region: str | None = None, configuration: Configuration = None
) -> JsonObject:
    """Rollback: restart the original primary, resync it and fail back to it."""
    return _checked(
        _client(configuration).call("/rollbacks/restore-feature-primary"), "the feature store"
    )


@fault_scope("replication", removes_serving=False)
def pause_replication(
    region: str, mode: str = "pause", configuration: Configuration = None
) -> JsonObject:
    """Stop cross-region replication from ``region`` (the primary): the artifact store's
    replicator and the feature replica's link. ``pause`` stalls the link (data waits);
    ``break`` resets it (the replica must reconnect and resync)."""
    if mode not in ("pause", "break"):
        raise LabError(f"pause_replication: mode must be pause or break, got {mode!r}")
    return _client(configuration).call(
        "/faults/pause-replication", region=region, mode=mode, owner=_owner(configuration)
    )


def resume_replication(
    region: str | None = None, configuration: Configuration = None
) -> JsonObject:
    """Rollback: replication runs again and catches up."""
    return _checked(_client(configuration).call("/rollbacks/resume-replication"), "replication")


@fault_scope("feature-store")
def drop_online_features(
    region: str, fraction: float = 1.0, configuration: Configuration = None
) -> JsonObject:
    """Delete ``fraction`` of the entity rows from the online store (an eviction gone
    wrong); inference falls back to default features and quality drops."""
    if not 0 < fraction <= 1:
        raise LabError(f"drop_online_features: fraction must be in (0, 1], got {fraction}")
    return _client(configuration).call(
        "/faults/drop-feature-rows", region=region, fraction=fraction, owner=_owner(configuration)
    )


def rebuild_online_features(
    region: str | None = None, configuration: Configuration = None
) -> JsonObject:
    """Rollback: rebuild the online store from the offline store (the source of truth)."""
    return _checked(
        _client(configuration).call("/rollbacks/rebuild-online-features", region=region),
        "the online feature store",
    )


@fault_scope("vector-index")
def delete_vector_index(region: str, configuration: Configuration = None) -> JsonObject:
    """Delete the serving vector index in ``region`` (snapshots and embeddings remain)."""
    return _client(configuration).call(
        "/faults/delete-vector-index", region=region, owner=_owner(configuration)
    )


@recovery_action
def restore_vector_index(
    region: str, method: str | None = None, configuration: Configuration = None
) -> JsonObject:
    """Recover ``region``'s index: ``snapshot`` (restore the newest snapshot) or
    ``rebuild`` (from stored embeddings, never re-embedding). Without ``method``, as a
    rollback, restore from a snapshot only if the index is missing."""
    if method not in (None, "snapshot", "rebuild"):
        raise LabError(f"restore_vector_index: method must be snapshot or rebuild, got {method!r}")
    return _checked(
        _client(configuration).call("/actions/restore-vector-index", region=region, method=method),
        f"the vector index of {region}",
    )


@fault_scope("model-artifacts")
def delete_model_artifact(
    region: str, mode: str = "delete", configuration: Configuration = None
) -> JsonObject:
    """Delete (``delete``: a delete marker) or overwrite with corrupt bytes
    (``overwrite``) the current model artifact in ``region``; versioning keeps the
    earlier versions, and workers refuse what does not match its checksum."""
    if mode not in ("delete", "overwrite"):
        raise LabError(f"delete_model_artifact: mode must be delete or overwrite, got {mode!r}")
    return _client(configuration).call(
        "/faults/delete-model-artifact", region=region, mode=mode, owner=_owner(configuration)
    )


@recovery_action
def recover_model_artifact(region: str, configuration: Configuration = None) -> JsonObject:
    """Make the newest version that verifies current again (also the rollback)."""
    return _checked(
        _client(configuration).call("/actions/recover-model-artifact", region=region),
        f"the model artifact of {region}",
    )


@fault_scope("model-registry", removes_serving=False)
def lose_model_registry(region: str, configuration: Configuration = None) -> JsonObject:
    """The model registry of ``region`` is gone: its server and its database. Loaded
    models keep serving; a GPU node that boots cannot resolve the production model."""
    return _client(configuration).call(
        "/faults/lose-model-registry", region=region, owner=_owner(configuration)
    )


@recovery_action
def restore_model_registry(
    region: str, source: str | None = None, configuration: Configuration = None
) -> JsonObject:
    """Restore ``region``'s registry from the database copy held in ``source`` (the
    other region by default), as a team restores from its DR replica; also the
    rollback (a registry that answers is left alone)."""
    return _checked(
        _client(configuration).call("/actions/restore-model-registry", region=region,
                                    source=source),
        f"the model registry of {region}",
    )  # fmt: skip


@fault_scope("model-registry", removes_serving=False)
def move_model_alias(
    region: str, version: str | None = None, configuration: Configuration = None
) -> JsonObject:
    """Move the production alias in ``region``'s registry (the primary's) to
    ``version``: by default the lab's bad candidate, whose classes are off by one.
    GPU nodes follow the alias and load it."""
    return _client(configuration).call(
        "/faults/move-model-alias", region=region, version=version, owner=_owner(configuration)
    )


@recovery_action
def restore_model_alias(region: str, configuration: Configuration = None) -> JsonObject:
    """Point production back at the approved version in ``region``'s registry (the
    primary's); also the rollback."""
    return _checked(
        _client(configuration).call("/actions/restore-model-alias", region=region),
        "the production alias",
    )


@fault_scope("storage", removes_serving=False)
def throttle_storage(
    region: str,
    latency: str | float = 0.0,
    bandwidth: int | None = None,
    configuration: Configuration = None,
) -> JsonObject:
    """Slow ``region``'s artifact store: added latency per transfer (a duration such as
    ``200ms``) and a bandwidth cap in bytes per second."""
    seconds = parse_duration(latency) if isinstance(latency, str) else float(latency)
    if bandwidth is not None and bandwidth < 1024:
        raise LabError(f"throttle_storage: bandwidth must be at least 1024 B/s, got {bandwidth}")
    return _client(configuration).call(
        "/faults/throttle-storage",
        region=region,
        latency=seconds,
        bandwidth=bandwidth,
        owner=_owner(configuration),
    )


def unthrottle_storage(region: str, configuration: Configuration = None) -> JsonObject:
    """Rollback: the artifact store of ``region`` runs at full speed again."""
    return _checked(
        _client(configuration).call("/rollbacks/unthrottle-storage", region=region),
        f"the artifact store of {region}",
    )


@fault_scope("network", removes_serving=False)
def degrade_network(
    region: str,
    path: str = "clients",
    latency: str | float = "150ms",
    jitter: str | float = 0.0,
    loss: float = 0.0,
    bandwidth: int | None = None,
    configuration: Configuration = None,
) -> JsonObject:
    """Degrade one network path toward ``region``, as ``tc netem`` would: ``clients``
    (the load's requests to it), ``router`` (requests and the router's health checks)
    or ``replication`` (the cross-region link into the DR region). ``latency`` ±
    ``jitter`` one way, ``loss`` a probability (a lost packet costs a TCP
    retransmission), ``bandwidth`` in bytes per second."""

    def seconds(value: str | float) -> float:
        return parse_duration(value) if isinstance(value, str) else float(value)

    return _client(configuration).call(
        "/faults/degrade-network",
        region=region,
        through=path,
        latency=seconds(latency),
        jitter=seconds(jitter),
        loss=float(loss),
        bandwidth=bandwidth,
        owner=_owner(configuration),
    )


def restore_network(region: str, configuration: Configuration = None) -> JsonObject:
    """Rollback: every network path toward ``region`` is whole again."""
    return _checked(
        _client(configuration).call("/rollbacks/restore-network", region=region),
        f"the network toward {region}",
    )


# -- faults a health check does not see (every node keeps answering its health check
# 200 with the production version; see aidrill.lab.serving._node_faults) --------------------
def _node_fault(
    mode: str,
    region: str,
    count: int | None,
    fraction: float | None,
    configuration: Configuration,
    **params: float,
) -> JsonObject:
    if count is not None and fraction is not None:
        raise LabError(f"{mode}: give count or fraction, not both")
    if fraction is not None and not 0 < fraction <= 1:
        raise LabError(f"{mode}: fraction must be in (0, 1], got {fraction}")
    if count is not None and count < 1:
        raise LabError(f"{mode}: count must be at least 1, got {count}")
    return _client(configuration).call(
        "/faults/node-fault",
        region=region,
        mode=mode,
        count=count,
        fraction=fraction,
        params=dict(params),
        owner=_owner(configuration),
    )


@fault_scope("gpu-nodes")
def lie_about_health(
    region: str,
    count: int | None = None,
    fraction: float | None = None,
    configuration: Configuration = None,
) -> JsonObject:
    """The engine of ``count`` nodes (default 1) dies behind a live HTTP front: every
    inference fails at once while the health endpoint keeps answering 200."""
    return _node_fault("lying-health", region, count, fraction, configuration)


@fault_scope("gpu-nodes")
def serve_wrong_model(
    region: str,
    count: int | None = None,
    fraction: float | None = None,
    configuration: Configuration = None,
) -> JsonObject:
    """``count`` nodes (default 1) answer from a mislabelled model while reporting the
    production version: fast, 200, wrong."""
    return _node_fault("wrong-model", region, count, fraction, configuration)


@fault_scope("gpu-nodes")
def stick_loading(
    region: str,
    count: int | None = None,
    fraction: float | None = None,
    configuration: Configuration = None,
) -> JsonObject:
    """``count`` nodes' model servers come back from a restart reporting ready with the
    model still loading: every inference hangs until the caller gives up."""
    return _node_fault("stuck-loading", region, count, fraction, configuration)


@fault_scope("gpu-nodes")
def degrade_gpu(
    region: str,
    count: int | None = None,
    fraction: float | None = None,
    factor: float = 6.0,
    error_share: float = 0.3,
    configuration: Configuration = None,
) -> JsonObject:
    """An XID-like GPU fault on ``count`` nodes: service time times ``factor`` and
    ``error_share`` of their answers fail."""
    if factor < 1 or not 0 <= error_share <= 1:
        raise LabError("degrade_gpu: factor at least 1, error_share in [0, 1]")
    return _node_fault(
        "gpu-degradation", region, count, fraction, configuration,
        factor=factor, error_share=error_share,
    )  # fmt: skip


@fault_scope("gpu-nodes")
def slow_drip(
    region: str,
    count: int | None = None,
    fraction: float | None = None,
    ramp: str | float = 0.03,
    ceiling: str | float = "2s",
    configuration: Configuration = None,
) -> JsonObject:
    """A slow leak on ``count`` nodes: each answer takes ``ramp`` seconds longer per
    second since the fault (up to ``ceiling`` more); every answer still succeeds."""

    def seconds(value: str | float) -> float:
        return parse_duration(value) if isinstance(value, str) else float(value)

    return _node_fault(
        "slow-drip", region, count, fraction, configuration,
        ramp=seconds(ramp), ceiling=seconds(ceiling),
    )  # fmt: skip


def heal_gpu_nodes(region: str, configuration: Configuration = None) -> JsonObject:
    """Rollback of the faults above: every node of ``region`` serves normally again."""
    return _checked(
        _client(configuration).call("/rollbacks/clear-node-fault", region=region),
        f"the GPU nodes of {region}",
    )


@setup_action
def enable_outlier_ejection(region: str, configuration: Configuration = None) -> JsonObject:
    """Switch on ``region``'s balancer quality checks: a canary inference to every node
    each health round, a node that errs, is slow or disagrees with its peers ejected
    and replaced (aidrill.lab.serving._outliers). A change to the system, not a fault; its
    rollback is ``disable_outlier_ejection``."""
    return _client(configuration).call(
        "/setup/outlier-ejection", region=region, enabled=True, owner=_owner(configuration)
    )


def disable_outlier_ejection(region: str, configuration: Configuration = None) -> JsonObject:
    """Rollback: ``region``'s balancer checks health alone again, as shipped."""
    return _client(configuration).call("/setup/outlier-ejection", region=region, enabled=False)


def _checked(result: JsonObject, what: str) -> JsonObject:
    if not result.get("restored"):
        left = result.get("not_nominal")
        still = "; ".join(str(item) for item in left) if isinstance(left, list) else ""
        raise LabError(
            f"rollback did not restore {what} within its time limit"
            + (f" (still: {still})" if still else "")
        )
    return result
