"""The lab's wire records: a reply that does not fit is refused at the client's door,
a fault's own settings survive the round trip, and a ledger edited out of shape still
shows every fault it holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aidrill.errors import LabError
from aidrill.lab import read_fault_ledger
from aidrill.lab._records import CapacityReply, FaultEntry, LabStatus, RegionSnapshot, checked
from aidrill.lab.control._client import Capacity
from aidrill.lab.control._ledger import FaultLedger


def _region(**changes: object) -> dict[str, object]:
    region: dict[str, object] = {
        "name": "east", "port": 9001, "desired": 2, "failed": False,
        "capacity_exhausted": False, "provisioning": 0,
        "nodes": [{"name": "east-1", "pid": 42, "port": 9101, "healthy": True,
                   "alive": True, "model_version": "1"}],
    }  # fmt: skip
    return {**region, **changes}


def test_a_region_that_fits_is_read_by_name() -> None:
    region = checked(RegionSnapshot, _region(), "lab control /balancers")
    assert region["nodes"][0]["port"] == 9101


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"failed": "no"}, "failed"),  # a flag turned into a word
        ({"desired": None}, "desired"),
        ({"nodes": [{"name": "east-1"}]}, "nodes.0"),  # a node without its port
    ],
)
def test_a_reply_that_does_not_fit_is_refused_naming_where(
    change: dict[str, object], where: str
) -> None:
    with pytest.raises(LabError, match=rf"/balancers does not fit its record at {where}"):
        checked(RegionSnapshot, _region(**change), "lab control /balancers")


def test_a_status_without_its_data_tiers_is_refused() -> None:
    status = {
        "healthy": True, "problems": [], "at_capacity": True, "serving_capacity": 2,
        "nominal_capacity": 2, "faults": [], "regions": [_region()],
        "router": {"port": 1, "topology": "active-passive", "active": "east", "up": {}},
    }  # fmt: skip
    with pytest.raises(LabError, match="at data"):
        checked(LabStatus, status, "lab control /status")


def test_a_fault_keeps_its_own_settings_both_ways(tmp_path: Path) -> None:
    ledger = FaultLedger(tmp_path / "faults.json")
    entry = ledger.add("degrade-network", "east", {"run_id": "r1", "pid": 7}, latency=0.2)
    reply = Capacity(True, 2, 2, ledger.entries()).to_record()
    back = Capacity.from_record(json.loads(json.dumps(reply)))
    assert back.faults == [entry]
    assert back.faults[0]["owner"] == {"run_id": "r1", "pid": 7}
    assert dict(back.faults[0])["latency"] == 0.2  # beside the entry's keys, kept


def test_a_capacity_with_a_count_turned_into_a_word_is_refused() -> None:
    reply = {"at_capacity": True, "serving_capacity": "two", "nominal_capacity": 2, "faults": []}
    with pytest.raises(LabError, match="serving_capacity"):
        Capacity.from_record(reply)
    assert checked(CapacityReply, {**reply, "serving_capacity": 2}, "x")["serving_capacity"] == 2


def test_a_ledger_edited_out_of_shape_still_shows_every_fault(tmp_path: Path) -> None:
    entries = [
        {"kind": "kill-nodes", "region": "east", "injected_at": 5.0,
         "owner": {"run_id": "r9", "pid": 11, "run_dir": "/runs/r9"}, "count": 2},
        {"region": "west", "owner": "someone"},  # no kind, an owner that is a word
        "not an entry",
    ]  # fmt: skip
    (tmp_path / "faults.json").write_text(json.dumps(entries), encoding="utf-8")
    found: list[FaultEntry] = read_fault_ledger(tmp_path)
    assert [(e["kind"], e["region"]) for e in found] == [
        ("kill-nodes", "east"),
        ("unknown", "west"),
    ]
    assert found[0]["owner"]["run_dir"] == "/runs/r9"
    assert found[1]["owner"] == {} and found[1]["injected_at"] is None
    # A lab started over that file keeps both, so `lab up` clears and reports both.
    assert len(FaultLedger(tmp_path / "faults.json").entries()) == 2
