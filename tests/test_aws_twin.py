"""The AWS twin's reconciler against moto's real server, driven round by round.

The lab's regions are replaced by a stand-in (a test double that holds a desired size
and a list of nodes), so that each reconciler round runs exactly when the test says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aidrill.lab._aws_twin import AwsTwin, group_name


@dataclass
class _State:
    desired: int


@dataclass
class _StandInRegion:
    name: str
    desired: int
    nodes: list[dict[str, Any]] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = _State(self.desired)

    def set_launch_suspended(self, suspended: bool) -> None:
        pass

    def snapshot(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes)}

    def kill_node(self, name: str, reason: str) -> None:
        self.killed.append(name)

    def boot(self, count: int) -> None:
        self.state.desired = count
        self.nodes = [
            {"name": f"{self.name}-gpu-{i}", "alive": True, "healthy": True} for i in range(count)
        ]


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[tuple[AwsTwin, dict[str, _StandInRegion]]]:
    regions = {"east": _StandInRegion("east", 2), "west": _StandInRegion("west", 0)}
    regions["east"].boot(2)
    made = AwsTwin(
        regions,  # type: ignore[arg-type]
        primary="east",
        dr="west",
        bucket_ports={},
        serving=lambda: ["east"],
        throttle=lambda region, latency: None,
        unthrottle=lambda region: None,
        record=lambda kind, **detail: None,
        log_dir=tmp_path,
    )
    try:
        for lab, aws in made.aws_region.items():
            made._create_group(lab, aws)  # start() without its background rounds
        yield made, regions
    finally:
        made.router.server.server_close()
        made.process.kill()
        made.process.wait(timeout=5)
        if made.process.stdout is not None:
            made.process.stdout.close()


def _members(made: AwsTwin, lab: str) -> list[dict[str, Any]]:
    reply = made.client("autoscaling", made.aws_region[lab]).describe_auto_scaling_groups(
        AutoScalingGroupNames=[group_name(lab)]
    )
    members: list[dict[str, Any]] = reply["AutoScalingGroups"][0]["Instances"]
    return members


def test_a_scale_in_and_its_lost_nodes_reconcile_in_one_round(
    twin: tuple[AwsTwin, dict[str, _StandInRegion]],
) -> None:
    """Failover grows the DR group and its nodes claim instances; a reset then shrinks
    the region and its nodes go. One round must scale the group in and mark only the
    instances still in it (it once marked the ones just terminated, and moto's 500
    made the lab's reset fail)."""
    made, regions = twin
    regions["west"].boot(3)
    made.reconcile()
    made.reconcile()
    assert len(made.claims) == 5, "every booted node claims a running instance"
    regions["west"].state.desired = 0
    regions["west"].nodes = []
    made.reconcile()
    assert _members(made, "west") == []
    assert sorted(made.claims) == ["east-gpu-0", "east-gpu-1"]
    assert {m["HealthStatus"] for m in _members(made, "east")} == {"Healthy"}
