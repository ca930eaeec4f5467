"""The lab's control API: faults, their rollbacks, status and ground truth over HTTP."""

from __future__ import annotations

import threading
import traceback
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

from aidrill._json import JsonObject
from aidrill.lab._http import JsonHandler
from aidrill.lab._records import FaultOwner
from aidrill.lab.network._faults import Impairment, impairment_from

if TYPE_CHECKING:
    from aidrill.lab.control._daemon import Lab


class Refused(Exception):
    """A fault request the lab declines (for example beyond the caller's own limit)."""


_FAULTS = {
    "/faults/kill-nodes": lambda lab, b: lab.kill_nodes(
        b["region"], b.get("count"), b.get("fraction"), b.get("max_fraction"), _owner(b)
    ),
    "/faults/fail-region": lambda lab, b: lab.fail_region(b["region"], _owner(b)),
    "/faults/exhaust-gpu-capacity": lambda lab, b: lab.exhaust_capacity(b["region"], _owner(b)),
    "/rollbacks/restore-nodes": lambda lab, b: lab.restore_nodes(b["region"]),
    "/rollbacks/restore-region": lambda lab, b: lab.restore_region(b["region"]),
    "/rollbacks/restore-gpu-capacity": lambda lab, b: lab.restore_capacity(b["region"]),
    "/reset": lambda lab, b: lab.reset(),
    "/faults/degrade-network": lambda lab, b: lab.degrade_network(
        str(b.get("through", "clients")), b["region"], _impairment(b), _owner(b)
    ),
    "/rollbacks/restore-network": lambda lab, b: lab.restore_network(b["region"]),
    "/faults/node-fault": lambda lab, b: lab.node_fault(
        b["region"],
        str(b.get("mode")),
        b.get("count"),
        b.get("fraction"),
        b.get("params") or {},
        _owner(b),
    ),
    "/rollbacks/clear-node-fault": lambda lab, b: lab.clear_node_fault(b["region"]),
    "/setup/outlier-ejection": lambda lab, b: lab.set_outlier_ejection(
        b["region"], bool(b.get("enabled")), _owner(b)
    ),
    # -- data tiers ---------------------------------------------------------------------
    "/faults/fail-feature-primary": lambda lab, b: lab.data_fault(
        "fail-feature-primary",
        lab.data.features.active,
        _owner(b),
        lab.data.features.fail_primary,
    ),
    "/rollbacks/restore-feature-primary": lambda lab, b: lab.data_rollback(
        "fail-feature-primary",
        None,
        lab.data.features.restore_primary,
        lab.data.features.is_nominal,
    ),
    "/faults/pause-replication": lambda lab, b: lab.data_fault(
        "pause-replication",
        lab.plan.primary_region,
        _owner(b),
        lambda: lab.data.pause_replication(b.get("mode", "pause")),
        mode=b.get("mode", "pause"),
    ),
    "/rollbacks/resume-replication": lambda lab, b: lab.data_rollback(
        "pause-replication",
        None,
        lab.data.resume_replication,
        lambda: not lab.data.replicator.state.paused,
    ),
    "/faults/drop-feature-rows": lambda lab, b: lab.data_fault(
        "drop-feature-rows",
        lab.data.features.active,
        _owner(b),
        lambda: lab.data.features.drop_rows(float(b.get("fraction", 1.0))),
    ),
    "/rollbacks/rebuild-online-features": lambda lab, b: lab.data_rollback(
        "drop-feature-rows",
        None,
        lambda: lab.data.features.rebuild_online(b.get("region")),
        lab.data.features.rows_complete,
    ),
    "/faults/delete-vector-index": lambda lab, b: lab.data_fault(
        "delete-vector-index",
        b["region"],
        _owner(b),
        lab.data.vectors.services[b["region"]].delete,
    ),
    "/actions/restore-vector-index": lambda lab, b: lab.data_rollback(
        "delete-vector-index",
        b["region"],
        lambda: lab.restore_index(b["region"], b.get("method")),
        lambda: lab.data.vectors.services[b["region"]].info()["loaded"],
    ),
    "/faults/delete-model-artifact": lambda lab, b: lab.data_fault(
        "delete-model-artifact",
        b["region"],
        _owner(b),
        lambda: lab.data.artifacts.delete(b["region"], b.get("mode", "delete")),
        mode=b.get("mode", "delete"),
    ),
    "/actions/recover-model-artifact": lambda lab, b: lab.data_rollback(
        "delete-model-artifact",
        b["region"],
        lambda: lab.recover_artifact(b["region"]),
        lambda: lab.data.artifacts.current_ok(b["region"]),
    ),
    "/faults/lose-model-registry": lambda lab, b: lab.data_fault(
        "lose-model-registry",
        b["region"],
        _owner(b),
        lambda: lab.data.registry.lose(b["region"]),
    ),
    "/actions/restore-model-registry": lambda lab, b: lab.data_rollback(
        "lose-model-registry",
        b["region"],
        lambda: lab.data.registry.restore(b["region"], b.get("source")),
        lambda: lab.data.registry.servers[b["region"]].answers(),
    ),
    "/faults/move-model-alias": lambda lab, b: lab.data_fault(
        "move-model-alias",
        _writable_registry(lab, b["region"]),
        _owner(b),
        lambda: lab.data.registry.move_alias(b.get("version")),
        version=b.get("version"),
    ),
    "/actions/restore-model-alias": lambda lab, b: lab.data_rollback(
        "move-model-alias",
        None,
        lab.data.registry.restore_alias,
        lambda: lab.data.registry.production(lab.plan.primary_region) == lab.data.registry.approved,
    ),
    "/faults/throttle-storage": lambda lab, b: lab.data_fault(
        "throttle-storage",
        b["region"],
        _owner(b),
        lambda: lab.data.throttle(b["region"], float(b.get("latency") or 0), b.get("bandwidth")),
    ),
    "/rollbacks/unthrottle-storage": lambda lab, b: lab.data_rollback(
        "throttle-storage",
        b["region"],
        lambda: lab.data.unthrottle(b["region"]),
        lambda: lab.data.stores[b["region"]].proxy.fault.mode == "pass",
    ),
}


def _writable_registry(lab: Lab, region: str) -> str:
    if region != lab.plan.primary_region:
        raise Refused(
            f"the model registry of {region} is a read-only replica; the production alias "
            f"moves in {lab.plan.primary_region}"
        )
    return region


def _impairment(body: JsonObject) -> Impairment:
    try:
        return impairment_from(body)
    except (TypeError, ValueError) as exc:
        raise Refused(f"degrade-network: {exc}") from None


def _owner(body: JsonObject) -> FaultOwner:
    """Who asked for the fault, as its request says (``{}``: nobody said)."""
    given = body.get("owner")
    if not isinstance(given, dict):
        return {}
    owner: FaultOwner = {}
    if "run_id" in given:
        owner["run_id"] = None if given["run_id"] is None else str(given["run_id"])
    if "run_dir" in given:
        owner["run_dir"] = None if given["run_dir"] is None else str(given["run_dir"])
    pid = given.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool):
        owner["pid"] = pid
    return owner


def control_handler(lab: Lab) -> type[JsonHandler]:
    class ControlHandler(JsonHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/status":
                self.send_json(200, lab.status())
            elif url.path == "/capacity":
                self.send_json(200, lab.capacity().to_record())
            elif url.path == "/balancers":
                self.send_json(200, [r.snapshot() for r in lab.regions.values()])
            elif url.path == "/data":
                self.send_json(
                    200, {**lab.data.snapshot(), "serving": lab.router.serving_regions()}
                )
            elif url.path == "/nominal":
                problems = lab.problems()
                self.send_json(200, {"nominal": not problems, "problems": problems})
            elif url.path == "/activities":
                since = float(parse_qs(url.query).get("since", ["0"])[0])
                self.send_json(200, lab.activities(since))
            elif url.path == "/ground-truth":
                since = float(parse_qs(url.query).get("since", ["0"])[0])
                self.send_json(200, lab.truth.since(since))
            else:
                self.send_json(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = self.read_json()
            if self.path == "/shutdown":
                self.send_json(200, {"stopping": True})
                threading.Thread(target=lab.stop, daemon=True).start()
                return
            handler = _FAULTS.get(self.path)
            if handler is None:
                self.send_json(404, {"error": f"unknown control path {self.path}"})
                return
            region = body.get("region")
            if region is not None and region not in lab.regions:
                self.send_json(
                    400, {"error": f"unknown region {region!r}; the lab has {sorted(lab.regions)}"}
                )
                return
            try:
                result = handler(lab, body)
            except Refused as exc:
                self.send_json(409, {"error": str(exc)})
                return
            except Exception as exc:  # reported to the caller, and to the lab's log
                traceback.print_exc()
                self.send_json(500, {"error": f"{type(exc).__name__}: {exc}"})
                return
            self.send_json(200, result)

    return ControlHandler
