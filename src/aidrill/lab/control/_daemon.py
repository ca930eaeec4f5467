"""The lab's background process: regions, router, fault ledger and control API.

Started by ``aidrill lab up`` as ``python -m aidrill.lab.control._daemon``; it writes
``lab.json`` into the state directory once every server is listening and runs until
``POST /shutdown`` or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidrill._event import ActivityRecord
from aidrill._json import Json, JsonObject
from aidrill.lab._http import QuietServer
from aidrill.lab._records import (
    EjectionSetting,
    FaultEntry,
    FaultOwner,
    Injected,
    LabJson,
    LabStatus,
    Settled,
)
from aidrill.lab.control._client import Capacity
from aidrill.lab.control._control import Refused, control_handler
from aidrill.lab.control._ledger import FaultLedger, GroundTruthLog
from aidrill.lab.data._tiers import DataTiers
from aidrill.lab.network._faults import PATHS, Impairment
from aidrill.lab.serving._model import mislabelled, model_bytes, train_model, write_golden_set
from aidrill.lab.serving._node_faults import MODES as NODE_FAULT_MODES
from aidrill.lab.serving._region import Region
from aidrill.lab.serving._router import GlobalRouter
from aidrill.lab.twins._aws import AwsTwin
from aidrill.lab.twins._plan import KUBE_PLAN, TWIN_PLAN, write_kube_plan, write_twin_plan
from aidrill.plan import Plan, load_plan

if TYPE_CHECKING:
    from aidrill.lab.twins._k8s import KubeTwin

# Waits for the lab to be whole follow progress: they give up once nothing has moved
# (no node provisioning, no lab event) for _STALL seconds, and in any case after _CAP.
_STALL = 30.0
_CAP = 240.0
Owner = FaultOwner
Problem = tuple[str, str]  # (what it is about: a region, "router", "data:<tier>"), text
_EVERYTHING = "*"


def _affected_by(kind: str, region: str) -> set[str]:
    """What an active fault of ``kind`` in ``region`` is expected to leave not nominal."""
    return {
        "kill-nodes": {region},
        "fail-region": {_EVERYTHING},
        "exhaust-gpu-capacity": {region},
        "fail-feature-primary": {"data:features"},
        "pause-replication": {"data:replication", "data:features"},
        "drop-feature-rows": {"data:features"},
        "delete-vector-index": {"data:vectors"},
        "delete-model-artifact": {"data:artifacts", region},
        "throttle-storage": {"data:artifacts"},
        "degrade-network": {"network"},
        "lose-model-registry": {"data:registry"},
        "move-model-alias": {"data:registry", "models"},
        "node-fault": {region},  # an ejected node is replaced while the fault is active
        "outlier-ejection": set(),
    }.get(kind, {_EVERYTHING})


class Lab:
    def __init__(
        self, state_dir: Path, plan: Plan, topology: str, twins: frozenset[str] = frozenset()
    ) -> None:
        self.state_dir = state_dir
        self.plan = plan
        self.settings = plan.lab
        self.topology = topology
        self.ledger = FaultLedger(state_dir / "faults.json")
        self.truth = GroundTruthLog(state_dir / "ground-truth.jsonl")
        self.stopping = threading.Event()
        self.stopped = threading.Event()
        model = train_model()
        self.golden_path = state_dir / "golden.json"
        self.accuracy, entities = write_golden_set(model, self.golden_path)
        self.data = DataTiers(
            plan.primary_region,
            plan.dr_region,
            self.settings,
            state_dir,
            model_bytes(model, self.settings.model_size_bytes),
            model_bytes(mislabelled(model), self.settings.model_size_bytes),
            entities,
            self.truth.record,
        )
        self.regions: dict[str, Region] = {}
        for region in plan.regions:
            self.regions[region.name] = Region(
                region.name,
                self.settings,
                self.data.worker_args(region.name),
                state_dir / "logs",
                self.nominal_desired(region.name),
                self.truth.record,
            )
            self.regions[region.name].index_port = self.data.vectors.services[region.name].port
        self.router = GlobalRouter(
            list(self.regions.values()),
            plan.primary_region,
            topology,
            self.settings.nodes_per_region,
            self.settings.health_interval,
            self.truth.record,
        )
        self.aws = (
            None
            if "aws" not in twins
            else AwsTwin(
                self.regions,
                plan.primary_region,
                plan.dr_region,
                {store.bucket: store.port for store in self.data.stores.values()},
                self.router.serving_regions,
                lambda region, latency: self.data.throttle(region, latency, None),
                self.data.unthrottle,
                self.truth.record,
                state_dir / "logs",
            )
        )
        self.kube = (
            _kube_twin(self.regions, plan.primary_region, self.truth.record, state_dir)
            if "kubernetes" in twins
            else None
        )
        self.twins = twins
        self.server = QuietServer(("127.0.0.1", 0), control_handler(self))
        self._at_capacity = False
        self._capacity_lock = threading.Lock()

    def nominal_desired(self, region: str) -> int:
        if self.topology == "active-active" or region == self.plan.primary_region:
            return self.settings.nodes_per_region
        return 0

    @property
    def nominal_capacity(self) -> int:
        regions = 2 if self.topology == "active-active" else 1
        return regions * self.settings.nodes_per_region

    def serving_capacity(self) -> int:
        return sum(self.regions[r].healthy_count() for r in self.router.serving_regions())

    def start(self) -> None:
        stale = self.ledger.take_all()
        for entry in stale:
            self.truth.record("stale_fault_cleared", fault=entry)
        self.data.start()
        for region in self.regions.values():
            region.start()
        self.router.start()
        if self.aws is not None:
            self.aws.start()
        if self.kube is not None:
            self.kube.start()
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name="control",
        ).start()
        threading.Thread(target=self._watch_capacity, daemon=True, name="capacity").start()
        self.truth.record("lab_started", topology=self.topology)
        info: LabJson = {
            "pid": os.getpid(),
            "control_port": self.server.server_address[1],
            "router_port": self.router.port,
            "topology": self.topology,
            "primary": self.plan.primary_region,
            "dr": self.plan.dr_region,
            "regions": {name: r.port for name, r in self.regions.items()},
            "golden_set": str(self.golden_path.resolve()),
            "model_accuracy": self.accuracy,
            "nominal_capacity": self.nominal_capacity,
            "started_at": time.time(),
            **self.data.info(),
            "aws": {"missing": _NOT_STARTED.format(twin="aws")}
            if self.aws is None
            else {
                "endpoint": self.aws.router.url,
                "env": self.aws.env(),
                "regions": self.aws.aws_region,
                "plan": str((self.state_dir / TWIN_PLAN).resolve()),
            },
            "kubernetes": {"missing": self._kube_missing()}
            if self.kube is None
            else {
                **self.kube.info(),
                "env": self.kube.env(),
                "plan": str((self.state_dir / KUBE_PLAN).resolve()),
            },
        }
        if self.aws is not None:
            write_twin_plan(self.state_dir / TWIN_PLAN, self.plan, info, self.aws)
        if self.kube is not None:
            write_kube_plan(self.state_dir / KUBE_PLAN, self.plan, info, self.kube)
        tmp = self.state_dir / "lab.json.tmp"
        tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
        os.replace(tmp, self.state_dir / "lab.json")

    def _kube_missing(self) -> str:
        if "kubernetes" in self.twins:
            return KUBE_TWIN_MISSING
        return _NOT_STARTED.format(twin="kubernetes")

    def stop(self) -> None:
        self.stopping.set()
        if self.kube is not None:
            self.kube.stop()
        if self.aws is not None:
            self.aws.stop()
        self.router.stop()
        for region in self.regions.values():
            region.stop()
        self.data.stop()
        self.truth.record("lab_stopped")
        self.server.shutdown()
        self.stopped.set()

    def _watch_capacity(self) -> None:
        while not self.stopping.wait(0.1):
            self.note_capacity()

    def note_capacity(self) -> bool:
        """Record in the ground truth when serving capacity is lost or restored."""
        with self._capacity_lock:
            serving = self.serving_capacity()
            at_capacity = serving >= self.nominal_capacity
            if at_capacity != self._at_capacity:
                self._at_capacity = at_capacity
                kind = "serving_capacity_restored" if at_capacity else "serving_capacity_lost"
                self.truth.record(
                    kind,
                    serving=serving,
                    nominal=self.nominal_capacity,
                    regions=self.router.serving_regions(),
                )
            return at_capacity

    def activities(self, since: float) -> list[ActivityRecord]:
        """Every region's activities (its supervisor's launches, its balancer's and
        nodes' doings), the global router's and the feature store's supervisor's, since
        ``since``, oldest first."""
        found = [a for region in self.regions.values() for a in region.activities(since)]
        found += self.router.activities(since) + self.data.features.activities(since)
        return sorted(found, key=lambda a: a["time"])

    def capacity(self) -> Capacity:
        """Serving capacity and the fault ledger: what answers at once, whatever a fault
        does to the stores (``status`` also checks the data tiers, which downloads the
        model artifact, slowly through a throttled store)."""
        return Capacity(
            at_capacity=self._at_capacity,
            serving_capacity=self.serving_capacity(),
            nominal_capacity=self.nominal_capacity,
            faults=self.ledger.entries(),
        )

    def status(self) -> LabStatus:
        capacity = self.capacity()
        return {
            "healthy": self._at_capacity and not self.ledger.entries(),
            "problems": self.problems(),
            "at_capacity": capacity.at_capacity,
            "serving_capacity": capacity.serving_capacity,
            "nominal_capacity": capacity.nominal_capacity,
            "faults": capacity.faults,
            "router": self.router.snapshot(),
            "regions": [r.snapshot() for r in self.regions.values()],
            "data": self.data.snapshot(),
        }

    def wait_until(
        self, predicate: Callable[[], object], stall: float = _STALL, cap: float = _CAP
    ) -> bool:
        """Poll ``predicate`` while the lab makes progress: give up after ``stall``
        seconds in which no node provisioned and no lab event happened, or ``cap``."""
        started = time.monotonic()
        moved_at, marker = started, self.truth.changes
        while not predicate():
            now = time.monotonic()
            busy = any(r.state.provisioning for r in self.regions.values())
            if busy or self.truth.changes != marker:
                moved_at, marker = now, self.truth.changes
            if now - moved_at >= stall or now - started >= cap:
                return bool(predicate())
            time.sleep(0.1)
        return True

    # -- faults and their rollbacks ----------------------------------------------------
    def kill_nodes(
        self,
        region: str,
        count: int | None,
        fraction: float | None,
        max_fraction: float | None,
        owner: Owner,
    ) -> Injected:
        target = self.regions[region]
        alive = sum(n["alive"] for n in target.snapshot()["nodes"])
        if count is None:
            count = max(1, int(alive * (fraction or 0.0) + 0.5))
        if max_fraction is not None and count > alive * max_fraction + 1e-9:
            raise Refused(
                f"killing {count} of {alive} GPU nodes in {region} exceeds the limit of "
                f"{max_fraction:.0%} of a region's nodes"
            )
        entry = self.ledger.add("kill-nodes", region, count=count, owner=owner)
        killed = target.kill_nodes(count)
        return {"fault": entry, "killed": killed}

    def restore_nodes(self, region: str) -> Settled:
        cleared = self.ledger.remove("kill-nodes", region)
        return self._settle(cleared)

    def fail_region(self, region: str, owner: Owner) -> Injected:
        entry = self.ledger.add("fail-region", region, owner=owner)
        self.regions[region].fail()
        self.data.fail_region(region)
        return {"fault": entry}

    def restore_region(self, region: str) -> Settled:
        self.regions[region].restore()
        self.data.restore_region(region)
        cleared = self.ledger.remove("fail-region", region)
        return self._settle(cleared)

    def exhaust_capacity(self, region: str, owner: Owner) -> Injected:
        entry = self.ledger.add("exhaust-gpu-capacity", region, owner=owner)
        self.regions[region].set_capacity_exhausted(True)
        return {"fault": entry}

    def restore_capacity(self, region: str) -> Settled:
        self.regions[region].set_capacity_exhausted(False)
        return {"restored": True, "cleared": self.ledger.remove("exhaust-gpu-capacity", region)}

    # -- faults a health check does not see ----------------------------------------------
    def node_fault(
        self,
        region: str,
        mode: str,
        count: int | None,
        fraction: float | None,
        params: JsonObject,
        owner: Owner,
    ) -> Injected:
        if mode not in NODE_FAULT_MODES:
            raise Refused(f"unknown node fault {mode!r}: {', '.join(NODE_FAULT_MODES)}")
        serving = self.regions[region].healthy_count()
        if count is None:
            count = max(1, int(serving * fraction + 0.5)) if fraction else 1
        if not 1 <= count <= serving:
            raise Refused(f"{mode}: {count} nodes asked, {region} serves on {serving}")
        entry = self.ledger.add("node-fault", region, owner=owner, mode=mode, count=count)
        taken = self.regions[region].set_node_fault(count, {"mode": mode, **params})
        if len(taken) < count:
            self.regions[region].clear_node_faults()
            self.ledger.remove("node-fault", region)
            raise Refused(f"{mode}: only {len(taken)} of {count} nodes of {region} took it")
        return {"fault": entry, "nodes": taken}

    def clear_node_fault(self, region: str) -> Settled:
        self.regions[region].clear_node_faults()
        cleared = self.ledger.remove("node-fault", region)
        return self._settle(cleared)

    def set_outlier_ejection(self, region: str, enabled: bool, owner: Owner) -> EjectionSetting:
        """``region``'s balancer quality checks on (a change the ledger keeps until its
        rollback, so a killed run's is found) or off."""
        self.ledger.remove("outlier-ejection", region)
        entry = self.ledger.add("outlier-ejection", region, owner=owner) if enabled else None
        self.regions[region].set_outlier_ejection(enabled)
        return {"outlier_ejection": enabled, "entry": entry}

    # -- degraded networks ----------------------------------------------------------------
    def degrade_network(
        self, path: str, region: str, impairment: Impairment, owner: Owner
    ) -> Injected:
        if path not in PATHS:
            raise Refused(f"unknown network path {path!r}: {', '.join(PATHS)}")
        if region not in self.regions:
            raise Refused(f"unknown region {region!r}")
        if path == "replication" and region != self.plan.dr_region:
            raise Refused(f"the replication link leads to the DR region {self.plan.dr_region}")
        entry = self.ledger.add(
            "degrade-network", region, owner=owner, path=path, **impairment.describe()
        )
        self._apply_network(path, region, impairment)
        self.truth.record("network_degraded", path=path, region=region, **impairment.describe())
        return {"fault": entry}

    def restore_network(self, region: str) -> Settled:
        for path in PATHS:
            self._apply_network(path, region, None)
        cleared = self.ledger.remove("degrade-network", region)
        self.truth.record("network_restored", region=region)
        return self._settle(cleared)

    def _apply_network(self, path: str, region: str, impairment: Impairment | None) -> None:
        if path == "replication":
            if region != self.plan.dr_region:
                return
            link = self.data.features.link
            if impairment is None:
                link.clear()
            else:
                link.set_fault(
                    latency=impairment.latency, bandwidth=impairment.bandwidth,
                    jitter=impairment.jitter, loss=impairment.loss,
                )  # fmt: skip
            return
        self.router.impair(path, region, impairment)

    def reset(self) -> Settled:
        cleared = self.ledger.take_all()
        self.router.impairments.clear()
        for region in self.regions.values():
            region.set_outlier_ejection(False)
            if any(e["kind"] == "node-fault" and e["region"] == region.name for e in cleared):
                region.clear_node_faults()
        if self.aws is not None:
            self.aws.reset()
        if self.kube is not None:
            self.kube.reset()
        for name, region in self.regions.items():
            if region.state.capacity_exhausted:
                region.set_capacity_exhausted(False)
            region.restore()
            if name == self.plan.primary_region or self.topology == "active-active":
                region.scale_to(self.nominal_desired(name), "reset to the plan's nominal size")
        self.data.reset()
        for entry in cleared:
            self.truth.record("fault_cleared_by_reset", fault=entry)
        return self._settle(cleared)

    # -- nominal ---------------------------------------------------------------------------
    def problems(self, expected: bool = False) -> list[str]:
        """What keeps the lab from its nominal state; empty when it is nominal.

        With ``expected``, leave out what the faults still in the ledger are meant to
        break (a rollback waits only for what it restores, whatever the order of the
        rollbacks); otherwise every active fault is itself a problem.
        """
        found = self._tagged_problems()
        entries = self.ledger.entries()
        if not expected:
            return [f"fault {e['kind']} active in {e['region']}" for e in entries] + [
                text for _, text in found
            ]
        excluded: set[str] = set()
        for entry in entries:
            excluded |= _affected_by(str(entry["kind"]), str(entry["region"]))
        if _EVERYTHING in excluded:
            return []
        return [text for tag, text in found if tag not in excluded]

    def _tagged_problems(self) -> list[Problem]:
        found: list[Problem] = []
        for region in self.regions.values():
            found += [
                (region.name, text) for text in region.problems(self.nominal_desired(region.name))
            ]
        snapshot = self.router.snapshot()
        if self.topology == "active-passive" and snapshot["active"] != self.plan.primary_region:
            found.append(
                (
                    "router",
                    f"the router serves {snapshot['active']}, not the primary "
                    f"{self.plan.primary_region}",
                )
            )
        down = sorted(name for name, up in snapshot["up"].items() if not up)
        if self.topology == "active-active" and down:
            found.append(("router", f"the router sees {', '.join(down)} down"))
        if not self.router.checking:
            found.append(("router", "the router's health checks are not running"))
        # Computed afresh: the capacity watcher's flag may not have seen a fault injected
        # a moment ago, and a rollback must not return before the lab is really whole.
        if not self.note_capacity():
            found.append(("router", "serving capacity below nominal"))
        found += [
            ("network", f"the network from {path} toward {region} is degraded")
            for path, region in sorted(self.router.impairments)
        ]
        link = self.data.features.link.fault
        if link.mode == "pass" and (link.latency or link.jitter or link.loss or link.bandwidth):
            found.append(("network", "the cross-region replication link is degraded"))
        approved = self.data.registry.approved
        found += [
            ("models", f"{node} serves model version {version}, not production {approved}")
            for region in self.regions.values()
            for node, version in region.model_versions().items()
            if version != approved
        ]
        kube = self.kube.problems() if self.kube is not None else []
        aws = self.aws.problems() if self.aws is not None else []
        return found + self.data.problems() + aws + kube

    def _settle(self, cleared: list[FaultEntry]) -> Settled:
        """Wait (following progress) until nothing is off but what active faults break."""
        ok = self.wait_until(lambda: not self.problems(expected=True))
        return {"restored": ok, "cleared": cleared, "not_nominal": self.problems(expected=True)}

    # -- data-tier faults ----------------------------------------------------------------
    def restore_index(self, region: str, method: str | None) -> JsonObject:
        service = self.data.vectors.services[region]
        if method not in (None, "snapshot", "rebuild"):
            raise Refused(f"unknown index recovery method {method!r}: snapshot or rebuild")
        if method is None and service.info()["loaded"]:
            return {"already_loaded": True}
        if method == "rebuild":
            return service.rebuild_from_embeddings()
        return service.restore_snapshot()

    def recover_artifact(self, region: str) -> JsonObject:
        result = self.data.artifacts.recover(region)
        other = self.plan.dr_region if region == self.plan.primary_region else None
        if other is not None:
            # A corrupt version replicates too; wait for the restored one to follow it.
            self.wait_until(lambda: self.data.artifacts.current_ok(other))
        return result

    def data_fault(
        self, kind: str, region: str, owner: Owner, apply: Callable[[], Json], **detail: Json
    ) -> Injected:
        entry = self.ledger.add(kind, region, owner=owner, **detail)
        result = apply()
        return {"fault": entry, "result": result}

    def data_rollback(
        self, kind: str, region: str | None, undo: Callable[[], Json], settled: Callable[[], object]
    ) -> Settled:
        """Undo one data-tier fault; wait until that tier is whole again, then until
        nothing is off but what faults still active break."""
        result = undo()
        cleared = self.ledger.remove(kind, region)
        settled_ok = self.wait_until(settled)
        outcome = self._settle(cleared)
        return {**outcome, "restored": settled_ok and outcome["restored"], "result": result}


_NOT_STARTED = "the lab runs without its {twin} twin: start it with `aidrill lab up --twins {twin}`"
KUBE_TWIN_MISSING = (
    "the Kubernetes twin needs kmock: pip install 'aidrill[kubernetes-twin]' and restart the lab"
)


def _kube_twin(
    regions: dict[str, Region], primary: str, record: Any, state_dir: Path
) -> KubeTwin | None:
    """The Kubernetes twin, when kmock (an optional extra) is installed."""
    try:
        from aidrill.lab.twins._k8s import KubeTwin
    except ModuleNotFoundError as exc:
        if exc.name != "kmock" and not str(exc.name).startswith("kmock."):
            raise
        return None
    return KubeTwin(regions, primary, record, state_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="aidrill-lab")
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--topology", choices=["active-passive", "active-active"])
    parser.add_argument(
        "--twins", default="", help="comma-separated twins to start beside the lab: aws,kubernetes"
    )
    parser.add_argument(
        "--detach", action="store_true", help="fork into a new session and return at once"
    )
    args = parser.parse_args(argv)
    plan = load_plan(args.plan)
    if args.detach and os.fork() > 0:
        os._exit(0)
    if args.detach:
        os.setsid()
    (args.state / "daemon.pid").write_text(str(os.getpid()))
    (args.state / "logs").mkdir(parents=True, exist_ok=True)
    twins = frozenset(t for t in args.twins.split(",") if t)
    lab = Lab(args.state, plan, args.topology or plan.topology, twins)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=lab.stop).start())
    lab.start()
    lab.stopping.wait()
    lab.stopped.wait(timeout=20)
    (args.state / "lab.json").unlink(missing_ok=True)
    # Every child is stopped and every file written; leave without waiting on library
    # threads (boto3, asyncio executors) that interpreter shutdown would join.
    os._exit(0)


if __name__ == "__main__":
    main()
