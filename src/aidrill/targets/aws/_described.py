"""What the AWS APIs describe, as the records aidrill reads: an instance, an Auto Scaling
group and its members, a FIS template's targets and actions.

boto3 answers untyped documents; each record takes the few fields aidrill uses at the
boundary (``from_api``), so the resolvers and the adapter read named, typed fields and
an estate that answers with a field missing (another tool's instance without tags, a
group mid-creation) reads as absent, not as a ``KeyError`` deep inside a dry run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_GONE = ("terminated", "shutting-down")


def _text(document: Mapping[str, object], key: str) -> str | None:
    value = document.get(key)
    return value if isinstance(value, str) else None


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _mappings(value: object) -> list[Mapping[str, object]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


@dataclass(frozen=True)
class Instance:
    """An EC2 instance (``DescribeInstances``)."""

    id: str
    state: str
    zone: str | None = None
    name: str | None = None  # its Name tag

    @classmethod
    def from_api(cls, document: Mapping[str, object]) -> Instance:
        tags = {str(t.get("Key")): str(t.get("Value")) for t in _mappings(document.get("Tags"))}
        return cls(
            id=_text(document, "InstanceId") or "unknown",
            state=_text(_mapping(document.get("State")), "Name") or "unknown",
            zone=_text(_mapping(document.get("Placement")), "AvailabilityZone"),
            name=tags.get("Name"),
        )

    @property
    def live(self) -> bool:
        return self.state not in _GONE

    @property
    def label(self) -> str:
        """``i-0abc (bastion)`` where it has a Name tag, else its id."""
        return f"{self.id} ({self.name})" if self.name else self.id


@dataclass(frozen=True)
class Member:
    """An instance as its Auto Scaling group lists it."""

    id: str
    lifecycle: str
    health: str | None = None
    zone: str | None = None

    @classmethod
    def from_api(cls, document: Mapping[str, object]) -> Member:
        return cls(
            id=_text(document, "InstanceId") or "unknown",
            lifecycle=_text(document, "LifecycleState") or "unknown",
            health=_text(document, "HealthStatus"),
            zone=_text(document, "AvailabilityZone"),
        )

    @property
    def in_service(self) -> bool:
        return self.lifecycle == "InService"

    @property
    def serving(self) -> bool:
        """In service and healthy: what the group counts as serving."""
        return self.in_service and self.health == "Healthy"

    @property
    def leaving(self) -> bool:
        return self.lifecycle in ("Terminating", "Terminated")


@dataclass(frozen=True)
class Group:
    """An Auto Scaling group (``DescribeAutoScalingGroups``)."""

    name: str
    members: tuple[Member, ...]
    desired: int = 0
    suspended: tuple[str, ...] = ()  # its suspended processes

    @classmethod
    def from_api(cls, document: Mapping[str, object]) -> Group:
        desired = document.get("DesiredCapacity")
        suspended = _mappings(document.get("SuspendedProcesses"))
        return cls(
            name=_text(document, "AutoScalingGroupName") or "unknown",
            members=tuple(Member.from_api(m) for m in _mappings(document.get("Instances"))),
            desired=desired if isinstance(desired, int) else 0,
            suspended=tuple(sorted(str(p.get("ProcessName")) for p in suspended)),
        )

    @property
    def in_service(self) -> int:
        return sum(1 for m in self.members if m.in_service)


@dataclass(frozen=True)
class FisFilter:
    path: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class FisTarget:
    """One target of a FIS template: how it selects its resources."""

    resource_type: str | None
    arns: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    filters: tuple[FisFilter, ...] = ()
    selection: str = "ALL"

    @classmethod
    def from_api(cls, document: Mapping[str, object]) -> FisTarget:
        arns = document.get("resourceArns")
        return cls(
            resource_type=_text(document, "resourceType"),
            arns=tuple(str(a) for a in arns) if isinstance(arns, list) else (),
            tags=tuple((str(k), str(v)) for k, v in _mapping(document.get("resourceTags")).items()),
            filters=tuple(
                FisFilter(str(f.get("path", "")), tuple(str(v) for v in _list(f.get("values"))))
                for f in _mappings(document.get("filters"))
            ),
            selection=_text(document, "selectionMode") or "ALL",
        )


@dataclass(frozen=True)
class FisAction:
    action_id: str
    parameters: Mapping[str, object]
    targets: tuple[str, ...]  # names of the template's targets


@dataclass(frozen=True)
class FisTemplate:
    """A FIS experiment template (``GetExperimentTemplate``)."""

    actions: tuple[FisAction, ...]
    targets: Mapping[str, FisTarget]

    @classmethod
    def from_api(cls, document: Mapping[str, object]) -> FisTemplate:
        actions = tuple(
            FisAction(
                action_id=str(a.get("actionId")),
                parameters=_mapping(a.get("parameters")),
                targets=tuple(str(t) for t in _mapping(a.get("targets")).values()),
            )
            for a in _mapping(document.get("actions")).values()
            if isinstance(a, Mapping)
        )
        targets = {
            str(name): FisTarget.from_api(spec)
            for name, spec in _mapping(document.get("targets")).items()
            if isinstance(spec, Mapping)
        }
        return cls(actions, targets)


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
