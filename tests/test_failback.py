"""Failback while the DR region has a scale-up pending, in every order: the lab ends nominal.

The interleaving is driven step by step: the DR region has no GPU capacity, the
primary fails, the router fails over and asks the DR region for nodes it cannot
provision (the scale-up is pending). Then the capacity comes back and the primary is
restored, with the DR region's nodes still provisioning, already booted, or the other
way round. Every time, the primary must be back at its nodes, the router on the
primary and the DR region back at its standby size.
"""

from __future__ import annotations

import time

import pytest

from aidrill.lab import LabClient

from ._drill import wait_until

PRIMARY, DR = "lab-east", "lab-west"
OWNER = {"run_id": "failback-test", "pid": None}


def _region(lab: LabClient, name: str) -> dict[str, object]:
    return next(r for r in lab.status()["regions"] if r["name"] == name)


def _fail_over_with_no_dr_capacity(lab: LabClient) -> None:
    lab.call("/faults/exhaust-gpu-capacity", region=DR, owner=OWNER)
    lab.call("/faults/fail-region", region=PRIMARY, owner=OWNER)
    assert wait_until(lambda: lab.status()["router"]["active"] == DR, 20), "no failover"
    started = time.time() - 30
    assert wait_until(
        lambda: any(
            r["kind"] == "provisioning_refused" and r.get("region") == DR
            for r in lab.ground_truth(since=started)
        ),
        20,
    ), "the DR scale-up was never refused"
    assert _region(lab, DR)["desired"] == 4, "the scale-up is pending"


def _restore_capacity(lab: LabClient) -> dict[str, object]:
    return lab.call("/rollbacks/restore-gpu-capacity", region=DR)


def _restore_primary(lab: LabClient) -> dict[str, object]:
    return lab.call("/rollbacks/restore-region", region=PRIMARY)


@pytest.mark.parametrize(
    "order",
    [
        "capacity, then primary while DR nodes provision",
        "capacity, then primary once DR nodes booted",
        "primary, then capacity",
    ],
)
def test_failback_with_a_pending_dr_scale_up_ends_nominal(lab: LabClient, order: str) -> None:
    _fail_over_with_no_dr_capacity(lab)
    if order.startswith("capacity"):
        assert _restore_capacity(lab)["restored"]
        if "provision" in order:
            assert wait_until(lambda: _region(lab, DR)["provisioning"], 5)
            assert not any(n["healthy"] for n in _region(lab, DR)["nodes"]), "still booting"
        else:
            assert wait_until(lambda: sum(n["healthy"] for n in _region(lab, DR)["nodes"]) == 4, 60)
        restored = _restore_primary(lab)
    else:
        restored = _restore_primary(lab)
        assert _restore_capacity(lab)["restored"]
    assert restored["restored"], restored
    problems = lab.problems()
    assert problems == [], problems
    status = lab.status()
    assert status["router"]["active"] == PRIMARY
    primary, dr = _region(lab, PRIMARY), _region(lab, DR)
    assert sum(n["healthy"] and n["alive"] for n in primary["nodes"]) == 4  # type: ignore[attr-defined]
    # A node whose instance the AWS twin saw terminated is dead but listed until the
    # supervisor's next round reaps it: pilot light means no node still running.
    running = [n["name"] for n in dr["nodes"] if n["alive"]]  # type: ignore[attr-defined]
    assert dr["desired"] == 0 and not running, f"the DR region is back at pilot light: {running}"
    assert status["faults"] == []
