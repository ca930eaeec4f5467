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

from aidrill.lab.twins._aws import AwsTwin, group_name


@dataclass
class _State:
    desired: int


@dataclass
class _StandInRegion:
    name: str
    desired: int
    nodes: list[dict[str, Any]] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = _State(self.desired)

    def set_launch_suspended(self, suspended: bool) -> None:
        pass

    def snapshot(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes)}

    def kill_node(self, name: str, reason: str) -> None:
        self.killed.append(name)

    def activities(self, since: float, kinds: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return [a for a in self.history if a["time"] >= since
                and (not kinds or a.get("kind", "launch") in kinds)]  # fmt: skip

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


def test_a_twin_groups_activity_history_is_its_lab_regions_supervisor(
    twin: tuple[AwsTwin, dict[str, _StandInRegion]],
) -> None:
    """moto keeps no scaling activity history: the twin's endpoint answers it for its own
    groups from the lab region's supervisor, in the Query API's XML that botocore reads
    (newest first, as AWS lists them); any other group's call goes on to moto."""
    import threading
    import time

    import boto3

    made, regions = twin
    now = time.time()
    why = "no GPU capacity in region west"
    regions["west"].history = [
        {"time": now - 3, "region": "west", "status": "started", "action": "launch a GPU node",
         "cause": ""},
        {"time": now - 2, "region": "west", "status": "failed", "action": "launch a GPU node",
         "cause": why},
    ]  # fmt: skip
    serving = threading.Thread(target=made.router.server.serve_forever, daemon=True)
    serving.start()
    try:
        client = boto3.client("autoscaling", region_name=made.aws_region["west"],
                              endpoint_url=made.router.url, aws_access_key_id="twin",
                              aws_secret_access_key="twin")  # fmt: skip
        listed = client.describe_scaling_activities(AutoScalingGroupName=group_name("west"))
        other = client.describe_scaling_activities(AutoScalingGroupName="someone-elses")
    finally:
        made.router.server.shutdown()
    activities = listed["Activities"]
    # One activity per launch, as a group lists it: its start, its end, its outcome.
    assert [a["StatusCode"] for a in activities] == ["Failed"]
    assert activities[0]["StatusMessage"] == why
    assert abs(activities[0]["StartTime"].timestamp() - (now - 3)) < 0.01
    assert abs(activities[0]["EndTime"].timestamp() - (now - 2)) < 0.01
    assert other["Activities"] == []
