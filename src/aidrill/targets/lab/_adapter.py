"""The embedded lab as a target: the only place outside ``aidrill.lab`` that knows it."""

from __future__ import annotations

import http.client
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidrill._event import Event
from aidrill._json import Configuration
from aidrill.errors import ProbeSetError, RefusedError
from aidrill.experiment import PlannedFault, describe_fault, planned_faults
from aidrill.lab import LabClient
from aidrill.plan import Plan
from aidrill.probes.sets import CheckOutcome, LabCapacityCheck, LabDataCheck
from aidrill.targets._endpoints import Address, ArtifactStore, Endpoints, ReplicationReport
from aidrill.targets._target import (
    Activity,
    Admission,
    Heal,
    LeftFault,
    Resolved,
    limit_refusals,
    wait_for_nothing_off,
)

if TYPE_CHECKING:
    from chaoslib.types import Action, Experiment


_SERVING_FAULTS = ("kill-nodes", "fail-region")
_LAB_KEYS = ("lab", "lab")  # the lab's S3 accepts any key
_HEALTHZ_TIMEOUT = (
    1.0  # what the lab's balancer waits for a node's /healthz (lab/serving/_region.py)
)


_SOURCES = {
    "balancer": "lab load balancer of {}",
    "node": "lab GPU nodes of {}",
    "router": "lab global router",
    "feature-store": "lab feature store's supervisor",
}


class _OnlyLedgerFaults(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class LabTarget:
    kind = "lab"

    def __init__(self, state_dir: Path, plan: Plan) -> None:
        self.client = LabClient(state_dir)
        self.plan = plan

    # -- nominal --------------------------------------------------------------------
    def problems(self) -> list[str]:
        """The lab's own account of what is off (each region's GPU nodes, routing per
        topology, every data tier, the fault ledger), plus any mismatch with the plan."""
        info = self.client.info
        mismatch = []
        if info.primary != self.plan.primary_region or info.dr != self.plan.dr_region:
            mismatch.append(
                f"the lab runs {info.primary} (primary) and {info.dr} (DR); the plan names "
                f"{self.plan.primary_region} and {self.plan.dr_region}"
            )
        return mismatch + self.client.problems()

    def wait_nominal(self) -> list[str]:
        """Wait for nominal; a fault still in the ledger (its rollback never ran) will not
        clear by itself, so once only such faults are left the wait ends at once."""

        def problems() -> list[str]:
            found = self.problems()
            if found and all(p.startswith("fault ") for p in found):
                raise _OnlyLedgerFaults(found)
            return found

        try:
            return wait_for_nothing_off(problems)
        except _OnlyLedgerFaults as stuck:
            return stuck.problems

    def heal(self) -> Heal:
        started = time.monotonic()
        before = self.problems()
        cleared = self.clear_faults()
        after = self.wait_nominal()
        return Heal(before, after, cleared, time.monotonic() - started)

    def faults_left_behind(self) -> list[LeftFault]:
        return _left_faults(self.client.capacity().faults)

    def clear_faults(self) -> list[LeftFault]:
        return _left_faults(self.client.reset().get("cleared"))

    # -- where things are -------------------------------------------------------------
    def endpoints(self) -> Endpoints:
        info = self.client.info
        local = "127.0.0.1"
        return Endpoints(
            inference=info.router_url,
            golden_set=info.golden_set,
            primary=info.primary,
            dr=info.dr,
            index_queries=info.index_queries,
            serving_health=f"{info.router_url}/healthz",
            feature_store=Address(local, info.features_port) if info.features_port else None,
            feature_regions={r: Address(local, p) for r, p in info.feature_region_ports.items()},
            index={r: f"http://{local}:{p}" for r, p in info.index_ports.items()},
            pipelines=f"http://{local}:{info.pipelines_port}/jobs" if info.pipelines_port else None,
            artifacts={
                region: ArtifactStore(
                    info.buckets[region], endpoint=f"http://{local}:{port}", credentials=_LAB_KEYS
                )
                for region, port in info.storage.items()
            },
            registry={r: f"http://{local}:{p}" for r, p in info.registry_ports.items()},
            registry_model=info.registry_model,
            replication=self._replication,
            health_signals=self.health_signals,
            protocol=self.plan.protocol,
        )

    def _replication(self) -> ReplicationReport:
        """The lab's artifact replication as its control API reports it (charted only)."""
        replication = self.client.data()["replication"]
        return ReplicationReport(replication["backlog_seconds"], replication["paused"])

    def health_signals(self) -> dict[str, bool]:
        """What the lab's health checks claim, seen from outside: whether each region's
        balancer keeps each node in rotation (its API), and each node's own health
        endpoint, asked directly."""
        signals: dict[str, bool] = {}
        for region in self.client.balancers():
            if region["failed"]:
                signals[f"{region['name']} balancer"] = False
                continue
            for node in region["nodes"]:
                signals[f"{node['name']} in rotation"] = node["healthy"]
                signals[f"{node['name']} /healthz"] = _answers_health(node["port"])
        return signals

    def ground_truth(self, since: float) -> list[Event]:
        return self.client.ground_truth(since=since)

    def activities(self, since: float) -> list[Activity]:
        """The region supervisors' activity lists, from the lab's control API (not its
        ground-truth log): what an operator of the lab would see."""
        return [
            Activity(
                time=a["time"],
                source=_SOURCES.get(a["kind"], "lab supervisor of {}").format(a.get("region")),
                action=a.get("action") or "launch a GPU node",
                status=a.get("status") or "unknown",
                region=a.get("region"),
                cause=a.get("cause") or "",
                step=a["step"] if a.get("step") in ("detect", "provision", "load") else None,
                tier=a.get("tier"),
            )
            for a in self.client.activities(since)
        ]

    # -- safety -----------------------------------------------------------------------
    def check_injection(
        self, activity: Action, configuration: Configuration, full_outage: bool
    ) -> None:
        """No serving fault in a second region unless a full outage is declared."""
        if full_outage or self.plan.blast_radius.allow_both_regions:
            return
        region = ((activity.get("provider") or {}).get("arguments") or {}).get("region")
        kind = (activity.get("provider") or {}).get("func")
        if region is None or kind not in ("kill_gpu_nodes", "fail_region"):
            return
        others = {
            f.region
            for f in self.faults_left_behind()
            if f.region != region and f.kind in _SERVING_FAULTS
        }
        if others:
            raise RefusedError(
                f"blast radius: {sorted(others)} already has a serving fault; "
                f"{activity.get('name')!r} would hit {region} too"
            )

    def resolve(self, experiment: Experiment) -> list[Resolved]:
        """The lab's fault actions declare their scope; nodes are counted live."""
        resolved = []
        for fault in planned_faults(experiment):
            if not isinstance(fault, PlannedFault):
                _, name = fault
                resolved.append(Resolved(name, "no declared scope", refused="no scope"))
                continue
            resolved.append(
                Resolved(
                    fault.name,
                    describe_fault(fault, self.plan),
                    fault.region,
                    _share(fault, self.plan),
                )
            )
        return resolved

    def focus(self, tiers: frozenset[str]) -> None:
        """The lab is nominal only whole: every tier it runs is checked."""

    def admit(self, experiment: Experiment) -> Admission:
        """The lab's actions declare their scope, checked when the experiment loads."""
        resolved = self.resolve(experiment)
        where = f"the lab in {self.client.state_dir}"
        return Admission(where, resolved, limit_refusals(resolved))

    # -- steady-state checks only a lab can answer --------------------------------------
    def run_check(self, check: Any) -> CheckOutcome:
        if isinstance(check, LabCapacityCheck):
            return self._capacity(check)
        if isinstance(check, LabDataCheck):
            return self._data(check)
        raise ProbeSetError(f"check {getattr(check, 'name', check)!r} is not a lab check")

    def _capacity(self, check: LabCapacityCheck) -> CheckOutcome:
        capacity = self.client.capacity()
        figures = {
            "serving_capacity": capacity.serving_capacity,
            "nominal_capacity": capacity.nominal_capacity,
            "faults": len(capacity.faults),
        }
        return CheckOutcome(check.name, capacity.at_capacity, figures)

    def _data(self, check: LabDataCheck) -> CheckOutcome:
        data = self.client.data()
        problems = []
        replication = data["replication"]
        replicating = not replication["paused"] and not data["failed_regions"]
        if replicating and replication["backlog_seconds"] > check.max_replication_backlog:
            problems.append(f"replication backlog {replication['backlog_seconds']}s")
        features = data["features"]
        if not features["servers"][features["active"]]["alive"]:
            problems.append(f"the feature store's primary in {features['active']} is down")
        for region in data["serving"]:
            if not data["index"][region]["loaded"]:
                problems.append(f"no vector index serves in {region}")
        for job, state in data["pipelines"].items():
            if not state["running"]:
                problems.append(f"the {job} pipeline is not running")
        return CheckOutcome(check.name, not problems, {"problems": problems})


def _share(fault: PlannedFault, plan: Plan) -> float | None:
    if fault.scope.kind == "region":
        return 1.0
    if fault.scope.kind != "gpu-nodes":
        return None
    fraction = fault.arguments.get("fraction")
    count = fault.arguments.get("count")
    if isinstance(fraction, int | float):
        return float(fraction)
    if isinstance(count, int):
        return count / plan.lab.nodes_per_region
    return None


def _answers_health(port: int) -> bool:
    if not port:
        return False
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=_HEALTHZ_TIMEOUT)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return response.status == 200


def _left_faults(entries: Any) -> list[LeftFault]:
    """The lab's fault-ledger entries, as its control API returns them."""
    return [LeftFault.from_record(e) for e in entries or [] if isinstance(e, dict)]
