"""The lab's wire records: what its control API answers and its fault ledger keeps.

Each is a ``TypedDict``: the reply is JSON as sent, so a test or an operator reads it
by name as before, and mypy checks every name against the record. The lab writes them
(``lab.control``, ``lab.serving``, ``lab.data``); its client checks each reply against
its record on arrival (:func:`checked`), so a reply the lab never sends is refused at
the boundary instead of deep in a reader.

Records whose values are the lab's own business (a proxy's settings, a tier's detail)
stay JSON objects (pydantic's ``JsonValue``, which it can check): nothing outside the
lab reads them by name.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ConfigDict, JsonValue, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic checks these on Python < 3.12

from aidrill._event import Event as Event  # the lab's activities and ground truth
from aidrill.errors import LabError

_OPEN = ConfigDict(extra="allow")


class FaultOwner(TypedDict, total=False):
    """The run that injected a fault: kept so a killed run's faults are traced back."""

    run_id: str | None
    run_dir: str | None
    pid: int


@with_config(_OPEN)
class FaultEntry(TypedDict):
    """One active fault in the ledger. The fault's own settings (a count, a mode, a
    network path and its impairment) ride beside these keys, as the fault named them."""

    id: str
    kind: str
    region: str
    injected_at: float | None  # None only in an entry edited out of shape
    owner: FaultOwner


class Injected(TypedDict, total=False):
    """What a fault request answers: the ledger entry it made and what it did."""

    fault: FaultEntry
    killed: list[str]
    nodes: list[str]
    result: JsonValue


class EjectionSetting(TypedDict):
    """What turning a balancer's quality checks on or off answers."""

    outlier_ejection: bool
    entry: FaultEntry | None


class Settled(TypedDict, total=False):
    """What a rollback answers: whether the lab is whole again but for what faults
    still active break, the entries it cleared, and what is still off."""

    restored: bool
    cleared: list[FaultEntry]
    not_nominal: list[str]
    result: JsonValue


class NodeSnapshot(TypedDict):
    name: str
    pid: int
    port: int
    healthy: bool
    alive: bool
    model_version: str | None


class RegionSnapshot(TypedDict):
    name: str
    port: int
    desired: int
    failed: bool
    capacity_exhausted: bool
    provisioning: int
    nodes: list[NodeSnapshot]


class RouterSnapshot(TypedDict):
    port: int
    topology: str
    active: str | None
    up: dict[str, bool]


class ReplicatorState(TypedDict):
    paused: bool
    copied: int
    pending: int
    errors: int
    last_error: str | None
    lag_seconds: float | None


class ReplicationSnapshot(ReplicatorState):
    backlog_seconds: float


class FeatureSnapshot(TypedDict):
    active: str
    endpoint_port: int
    region_ports: dict[str, int]
    servers: dict[str, dict[str, JsonValue]]
    link: dict[str, JsonValue]


class IndexInfo(TypedDict):
    region: str
    loaded: bool
    ntotal: int
    data_as_of: float | None
    restored_as_of: float | None
    source: str


class PipelineSnapshot(TypedDict):
    region: str | None
    running: bool
    step: int
    last_step_at: float | None
    resumed_from: dict[str, JsonValue] | None


class RegistrySnapshot(TypedDict):
    approved: str | None
    copied_at: float | None
    production: dict[str, str | None]


class DataSnapshot(TypedDict):
    replication: ReplicationSnapshot
    features: FeatureSnapshot
    index: dict[str, IndexInfo]
    pipelines: dict[str, PipelineSnapshot]
    registry: RegistrySnapshot
    proxies: dict[str, dict[str, JsonValue]]
    failed_regions: list[str]


class DataReply(DataSnapshot):
    """``/data``: the data tiers with the regions now serving."""

    serving: list[str]


class CapacityReply(TypedDict):
    """``/capacity``: what serves at once against what should, and the fault ledger."""

    at_capacity: bool
    serving_capacity: int
    nominal_capacity: int
    faults: list[FaultEntry]


class LabStatus(CapacityReply):
    """``/status``: capacity, the ledger, the router, every region and the data tiers."""

    healthy: bool
    problems: list[str]
    router: RouterSnapshot
    regions: list[RegionSnapshot]
    data: DataSnapshot


Record = TypeVar("Record")
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


class RecordMisfit(LabError):
    """A reply or file of the lab that does not fit its record."""


def checked(record: type[Record], body: object, what: str) -> Record:
    """``body`` as ``record``, or :class:`RecordMisfit` naming where it does not fit."""
    adapter = _ADAPTERS.get(record)
    if adapter is None:
        adapter = _ADAPTERS[record] = TypeAdapter(record)
    try:
        fitted: Record = adapter.validate_python(body, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the reply"
        raise RecordMisfit(f"{what} does not fit its record at {where}: {first['msg']}") from None
    return fitted


def checked_list(record: type[Record], body: object, what: str) -> list[Record]:
    if not isinstance(body, list):
        raise RecordMisfit(f"{what} answered {type(body).__name__}, not a list")
    return [checked(record, item, what) for item in body]


class TwinInfo(TypedDict, total=False):
    """A cloud twin in ``lab.json``: where it serves and the environment that points
    clients at it, or why it is missing."""

    missing: str
    env: dict[str, str]
    plan: str
    endpoint: str
    regions: dict[str, str]  # lab region -> the AWS region its twin plays
    kubeconfig: str
    contexts: dict[str, str]
    servers: dict[str, str]
    namespace: str
    deployment: str


class RegistryInfo(TypedDict):
    registry_ports: dict[str, int]
    registry_model: str  # name@alias the GPU nodes resolve


class DataInfo(RegistryInfo):
    """Where the data tiers answer, for a prober outside the lab."""

    storage: dict[str, int]
    buckets: dict[str, str]
    features_port: int
    feature_region_ports: dict[str, int]
    index_ports: dict[str, int]
    pipelines_port: int
    index_queries: str


class LabJson(DataInfo):
    """``lab.json``: what the lab writes into its state folder once it serves."""

    pid: int
    control_port: int
    router_port: int
    topology: str
    primary: str
    dr: str
    regions: dict[str, int]
    golden_set: str
    model_accuracy: float
    nominal_capacity: int
    started_at: float
    aws: TwinInfo
    kubernetes: TwinInfo
