"""Pre-flight, heal and post-flight against a live lab: runs start and end nominal."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from aidrill.lab import LabClient

from ._drill import events, make_fast, result, run_aidrill, wait_until, write_experiment


def _break_the_feature_replica(lab: LabClient) -> None:
    """Kill the DR region's Redis behind the lab's back: no fault in the ledger, yet the
    lab is not nominal (the feature store has lost its replica)."""
    port = lab.status()["data"]["features"]["servers"]["lab-west"]["port"]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "redis-server" in cmdline and f":{port}" in cmdline:
            os.kill(int(entry.name), signal.SIGKILL)
            break
    else:
        raise AssertionError("the DR feature replica's process was not found")
    assert wait_until(lambda: lab.problems() != [], 10)


def _short_gpu_node_loss(workspace: Path, name: str, pause: float, **changes: object) -> str:
    """gpu-node-loss with the suite's short windows, its fault watched ``pause`` seconds
    at most (less once the recovery is proven)."""
    import yaml

    raw = yaml.safe_load((workspace / "experiments/lab/gpu-node-loss.yaml").read_text())
    raw = make_fast(raw, "gpu-node-loss")
    method = raw["method"]
    method[0]["pauses"] = {"after": pause}
    return write_experiment(
        workspace,
        "gpu-node-loss.yaml",
        name,
        method=method,
        extension=raw["extensions"][0],
        **changes,
    )


def test_preflight_refuses_a_lab_that_is_not_nominal_and_heal_repairs_it(
    workspace: Path, lab: LabClient
) -> None:
    _break_the_feature_replica(lab)
    experiment = _short_gpu_node_loss(workspace, "preflight.yaml", pause=18)
    refused = run_aidrill(workspace, lab.state_dir, "run", experiment)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "feature store not at home with its replica" in refused.stdout
    run_dir = sorted((workspace / "reports/runs").iterdir())[-1]
    outcome = result(run_dir)
    assert outcome["valid"] is False
    assert outcome["invalid_reasons"][0]["what"] == "preflight"
    assert all(c["verdict"] == "not measured" for c in outcome["components"])
    kinds = [e["kind"] for e in events(run_dir)]
    assert "fault_started" not in kinds and "rollbacks_skipped" in kinds, "nothing touched"
    assert lab.problems() != [], "a refused run leaves the target as it found it"

    healed = run_aidrill(workspace, lab.state_dir, "run", "--heal", experiment)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    run_dir = sorted((workspace / "reports/runs").iterdir())[-1]
    outcome = result(run_dir)
    assert outcome["valid"] is True
    heal = next(c for c in outcome["target_checks"] if c["check"] == "healed before the run")
    assert (
        heal["healed"] and "feature store not at home with its replica" in (heal["problems_before"])
    )
    assert outcome["components"][0]["verdict"] == "met"
    assert lab.problems() == []


def test_a_failed_rollback_resets_the_lab_and_makes_the_run_invalid(
    workspace: Path, lab: LabClient
) -> None:
    broken_rollback = {
        "type": "action",
        "name": "restore-a-region-that-does-not-exist",
        "provider": {
            "type": "python",
            "module": "aidrill.lab.actions",
            "func": "restore_gpu_nodes",
            "arguments": {"region": "lab-nowhere"},
        },
    }
    # What it measures does not matter: the run is invalid whatever it saw.
    experiment = _short_gpu_node_loss(
        workspace, "failed-rollback.yaml", pause=4, rollbacks=[broken_rollback]
    )
    done = run_aidrill(workspace, lab.state_dir, "run", experiment)
    assert done.returncode == 3, done.stdout + done.stderr
    run_dir = sorted((workspace / "reports/runs").iterdir())[-1]
    outcome = result(run_dir)
    assert outcome["valid"] is False
    reasons = [r["reason"] for r in outcome["invalid_reasons"]]
    assert any("the rollback restore-a-region-that-does-not-exist failed" in r for r in reasons)
    assert all(c["verdict"] == "not measured" for c in outcome["components"])
    reset = next(c for c in outcome["target_checks"] if c["check"] == "reset after the rollbacks")
    assert reset["healed"] is True
    assert any(c["kind"] == "kill-nodes" for c in reset["cleared"]), "the fault it left"
    assert lab.problems() == [] and lab.status()["faults"] == []
    page = (run_dir / "report.html").read_text()
    assert "Invalid run" in page and "reset after the rollbacks" in page
    assert json.loads((run_dir / "result.json").read_text())["schema"] == "aidrill.result/2"
