"""What a run asks of the target it drills, whatever kind the target is."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aidrill._event import Event
from aidrill._json import Configuration, JsonObject, Provider
from aidrill.errors import RefusedError
from aidrill.probes.sets import CheckOutcome
from aidrill.targets._endpoints import Endpoints

if TYPE_CHECKING:
    from chaoslib.types import Action, Experiment


# A wait for the target to become nominal follows progress: it gives up once what is
# off has not changed for STALL seconds, and in any case after CAP.
STALL = 30.0
CAP = 240.0


@dataclass(frozen=True)
class LeftFault:
    """A fault still active after the run that injected it ended: one entry of a
    target's fault ledger, with the run that owns it (which may still be running).

    Its record is the ledger's entry (``{"kind", "region", "injected_at", "owner":
    {"run_id", "pid", "run_dir"}, ...}``); anything else an entry holds stays in the
    ledger and is not read here."""

    kind: str
    region: str
    injected_at: float | None = None
    run_id: str | None = None
    pid: int | None = None
    run_dir: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LeftFault:
        owner = record.get("owner")
        owner = owner if isinstance(owner, Mapping) else {}
        injected = record.get("injected_at")
        pid = owner.get("pid")
        return cls(
            kind=str(record.get("kind") or "unknown"),
            region=str(record.get("region") or "unknown"),
            injected_at=float(injected) if isinstance(injected, (int, float)) else None,
            run_id=str(owner["run_id"]) if owner.get("run_id") else None,
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            run_dir=str(owner["run_dir"]) if owner.get("run_dir") else None,
        )

    def to_record(self) -> JsonObject:
        return {"kind": self.kind, "region": self.region, "injected_at": self.injected_at,
                "owner": self.owner_record()}  # fmt: skip

    def owner_record(self) -> JsonObject:
        """The owning run as the ledger names it (what is known of it)."""
        owner: JsonObject = {"run_id": self.run_id, "pid": self.pid, "run_dir": self.run_dir}
        return {k: v for k, v in owner.items() if v is not None}

    @property
    def owner(self) -> str:
        """The owning run as a person reads it: ``run 2026-… (pid 4242)``."""
        pid = f" (pid {self.pid})" if self.pid is not None else ""
        return f"run {self.run_id or 'unknown'}{pid}"


@dataclass(frozen=True)
class Heal:
    """What a heal (reset, then a bounded wait for nominal) found and left."""

    problems_before: list[str]
    problems_after: list[str]
    cleared: list[LeftFault] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def healed(self) -> bool:
        return not self.problems_after

    def to_record(self) -> JsonObject:
        return {
            "problems_before": list(self.problems_before),
            "problems_after": list(self.problems_after),
            "cleared": [
                {"kind": c.kind, "region": c.region, "owner": c.owner_record()}
                for c in self.cleared
            ],
            "seconds": round(self.seconds, 3),
            "healed": self.healed,
        }


@dataclass(frozen=True)
class Activity:
    """Something the target's own automation did, read through the target's API as any
    operator would (an Auto Scaling group's activities, a cluster's events, the lab
    supervisor's activity list): evidence of why a recovery did or did not happen."""

    time: float  # UTC epoch seconds
    source: str  # whose activity: "auto scaling group gpu-east", "kubernetes events"
    action: str  # "launch a GPU node", "schedule pod inference-7d9"
    # "started", "succeeded", "failed", "cancelled"; "unreadable" when the history itself
    # could not be read (never a cause of anything)
    status: str
    region: str | None = None
    cause: str = ""  # what the target said, verbatim
    # The recovery step this activity marks, where the target can tell: "detect" (the
    # system acted on the fault), "provision" (replacement capacity exists), "load"
    # (the replacement serves). See ``aidrill.measure.recovery_phases``.
    step: str | None = None
    # The component tier it concerns where not the serving tier ("feature-store" for a
    # managed store's failover): that tier's phases read it, the serving tier's do not.
    tier: str | None = None

    def to_record(self) -> JsonObject:
        return {
            "activity_time": round(self.time, 3),
            "source": self.source,
            "action": self.action,
            "status": self.status,
            "region": self.region,
            "cause": self.cause,
            **({"step": self.step} if self.step else {}),
            **({"tier": self.tier} if self.tier else {}),
        }


@dataclass(frozen=True)
class Resolved:
    """One fault action's blast radius, resolved against the live target."""

    action: str
    touches: str  # what it would touch, in words
    region: str | None = None
    share: float | None = None  # of the region's GPU nodes, where that applies
    refused: str | None = None  # why the plan's limits refuse it
    resources: tuple[str, ...] = ()  # every resource its filters reach, GPU or not


@dataclass(frozen=True)
class Admission:
    """The one decision on whether a run may go ahead: who aidrill acts as, what each
    action would touch, and every reason the plan refuses it. ``aidrill run --dry-run``
    prints it; a run goes ahead only when it holds no refusal."""

    identity: str
    resolved: list[Resolved]
    refusals: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.refusals)

    def raise_if_refused(self) -> list[Resolved]:
        if self.refusals:
            raise RefusedError("; ".join(self.refusals))
        return self.resolved


def limit_refusals(resolved: list[Resolved]) -> list[str]:
    return [f"blast radius: {r.action}: {r.refused}" for r in resolved if r.refused]


class Target(Protocol):
    """A target answers what a run needs of it, and nothing else."""

    kind: str

    def problems(self) -> list[str]:
        """What keeps the target from its nominal state per the plan, now; empty when
        it is nominal (pre-flight)."""

    def focus(self, tiers: frozenset[str]) -> None:
        """Only these data tiers (those the run's drill measures) count for its pre-
        and post-flight: a GPU drill is not refused for a vector index it never reads."""

    def wait_nominal(self) -> list[str]:
        """Wait, following progress, until the target is nominal; what is still off."""

    def heal(self) -> Heal:
        """Clear every fault left on the target and wait (bounded) for nominal."""

    def endpoints(self) -> Endpoints:
        """Where the load goes and where each tier is probed from outside."""

    def ground_truth(self, since: float) -> list[Event]:
        """What the target itself recorded happening (only a lab keeps this)."""

    def activities(self, since: float) -> list[Activity] | None:
        """What the target's automation did since ``since``, from its own API; None
        when the target keeps no activity log (then no blind time can be measured)."""

    def faults_left_behind(self) -> list[LeftFault]:
        """Faults still active from runs that ended, as the target's fault ledger holds
        them (each with its owner run); a target that keeps no ledger has none."""

    def clear_faults(self) -> list[LeftFault]:
        """Clear the faults left behind; the ones cleared."""

    def check_injection(
        self, activity: Action, configuration: Configuration, full_outage: bool
    ) -> None:
        """Refuse (RefusedError) an action about to be injected that the plan forbids."""

    def run_check(self, check: Any) -> CheckOutcome:
        """A steady-state check particular to this kind of target."""

    def resolve(self, experiment: Experiment) -> list[Resolved]:
        """Each fault action's blast radius against the live target (read-only calls)."""

    def admit(self, experiment: Experiment) -> Admission:
        """Before anything runs: the identity, the resolved blast radius and every
        refusal of the plan's allow-list and limits (read-only calls; CloudError when
        the target cannot be reached or refuses aidrill)."""


def wait_for_nothing_off(
    problems: Callable[[], list[str]], stall: float = STALL, cap: float = CAP
) -> list[str]:
    """Poll ``problems`` until it is empty; give up once its answer has not changed for
    ``stall`` seconds (nothing is moving) or after ``cap``. Return what is still off."""
    started = time.monotonic()
    current = problems()
    moved_at = started
    while current:
        now = time.monotonic()
        if now - moved_at >= stall or now - started >= cap:
            break
        time.sleep(0.25)
        latest = problems()
        if latest != current:
            moved_at = time.monotonic()
        current = latest
    return current


def method_actions(experiment: Experiment) -> Iterator[tuple[str, Provider]]:
    """Each action of the experiment's method, by name, with its provider."""
    for activity in experiment.get("method") or []:
        if isinstance(activity, dict) and activity.get("type") == "action":
            provider = activity.get("provider")
            yield str(activity.get("name")), provider if isinstance(provider, dict) else {}


def undeclared_action(name: str, func: str, region: str | None, declared: Any) -> Resolved:
    """An action aidrill cannot resolve from its filters: its author's declared scope
    stands in for the resolution; without one it is refused."""
    if isinstance(declared, dict) and declared.get("kind"):
        share = declared.get("share")
        where = declared.get("region") or region
        return Resolved(
            name,
            f"{func}: as declared, {declared['kind']} in {where}"
            + (f", {float(share):.0%} of its GPU nodes" if share else ""),
            str(where),
            float(share) if share else None,
        )
    return Resolved(
        name,
        f"{func}: aidrill cannot resolve what this touches",
        region,
        refused=(
            f"{func} is not an action aidrill resolves; declare its scope in the aidrill "
            f"extension (scopes: {{{name}: {{region, kind, share}}}}) or use one it resolves"
        ),
    )
