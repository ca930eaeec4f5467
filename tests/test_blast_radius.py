"""Blast radius: declared scopes checked against the plan before injection."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aidrill.cli.main import cli
from aidrill.errors import LabError, RefusedError
from aidrill.experiment import load_experiment
from aidrill.lab import LabClient
from aidrill.lab import actions as lab_actions
from aidrill.plan import load_plan

from ._drill import write_experiment


def _with_method(workspace: Path, name: str, method: list[dict], **extension: object) -> Path:
    path = write_experiment(
        workspace, "region-failover.yaml", name, method=method, extension=extension
    )
    return workspace / path


def _action(func: str, **arguments: object) -> dict:
    return {
        "type": "action",
        "name": f"{func}-{arguments.get('region')}",
        "provider": {
            "type": "python",
            "module": "aidrill.lab.actions",
            "func": func,
            "arguments": arguments,
        },
    }


def test_more_than_half_of_a_regions_gpu_nodes_is_refused(workspace: Path) -> None:
    path = _with_method(
        workspace, "greedy.yaml", [_action("kill_gpu_nodes", region="lab-east", fraction=0.75)]
    )
    with pytest.raises(RefusedError, match="75% of the GPU nodes of lab-east; the plan allows"):
        load_experiment(path, load_plan("drplan.yaml"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2


def test_a_count_is_judged_against_the_regions_size(workspace: Path) -> None:
    path = _with_method(
        workspace, "count.yaml", [_action("kill_gpu_nodes", region="lab-east", count=3)]
    )
    with pytest.raises(RefusedError, match="75%"):
        load_experiment(path, load_plan("drplan.yaml"))


def test_faults_of_one_run_add_up(workspace: Path) -> None:
    """Two kills of 50% each in one region take all of it: refused before anything runs."""
    first = _action("kill_gpu_nodes", region="lab-east", fraction=0.5)
    second = {**_action("kill_gpu_nodes", region="lab-east", count=2), "name": "kill-again"}
    path = _with_method(workspace, "twice.yaml", [first, second])
    with pytest.raises(RefusedError, match="together take 100% of the GPU nodes of lab-east"):
        load_experiment(path, load_plan("drplan.yaml"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2 and "kill-again" in result.output
    # Half of each region is within the limit: the shares add up per region.
    other = _action("kill_gpu_nodes", region="lab-west", fraction=0.5)
    fine = _with_method(workspace, "each-half.yaml", [first, other], **{"full-outage": True})
    load_experiment(fine, load_plan("drplan.yaml"))


def test_both_regions_at_once_needs_a_declared_full_outage(workspace: Path) -> None:
    method = [_action("fail_region", region="lab-east"), _action("fail_region", region="lab-west")]
    path = _with_method(workspace, "both.yaml", method)
    with pytest.raises(RefusedError, match="full-outage"):
        load_experiment(path, load_plan("drplan.yaml"))
    allowed = _with_method(workspace, "declared.yaml", method, **{"full-outage": True})
    assert load_experiment(allowed, load_plan("drplan.yaml")).extension.full_outage


def test_a_fault_action_without_a_declared_scope_is_refused(workspace: Path) -> None:
    method = [
        {
            "type": "action",
            "name": "mystery",
            "provider": {
                "type": "python",
                "module": "os.path",
                "func": "exists",
                "arguments": {"path": "/"},
            },
        }
    ]
    path = _with_method(workspace, "mystery.yaml", method)
    with pytest.raises(RefusedError, match="declares no blast-radius scope") as caught:
        load_experiment(path, load_plan("drplan.yaml"))
    assert caught.value.field == "method.0"


def test_a_region_outside_the_plan_is_refused(workspace: Path) -> None:
    path = _with_method(workspace, "elsewhere.yaml", [_action("fail_region", region="eu-west")])
    with pytest.raises(RefusedError, match="does not name"):
        load_experiment(path, load_plan("drplan.yaml"))


def test_shipped_no_capacity_drill_is_within_the_blast_radius() -> None:
    repo = Path(__file__).resolve().parents[1]
    experiment = repo / "experiments" / "lab" / "region-failover-no-gpu-capacity.yaml"
    assert yaml.safe_load(experiment.read_text())
    load_experiment(experiment, load_plan(repo / "drplan.yaml"))


def test_the_lab_enforces_the_fraction_at_injection(lab: LabClient) -> None:
    config = {"aidrill_state_dir": str(lab.state_dir), "aidrill_max_gpu_node_fraction": 0.5}
    lab_actions.kill_gpu_nodes("lab-east", count=2, configuration=config)
    with pytest.raises(LabError, match="exceeds the limit of 50%"):
        lab_actions.kill_gpu_nodes("lab-east", count=2, configuration=config)
    assert len(lab.status()["faults"]) == 1, "the refused fault never reached the ledger"
