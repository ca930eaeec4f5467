"""The lab's model registry tier: MLflow's registry per region, copied to DR, resolved by
every GPU node through the production alias."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aidrill._http import HttpClient
from aidrill.errors import LabError
from aidrill.lab import LabClient
from aidrill.lab.data._registry import ModelRegistry
from aidrill.targets._registry_watch import RegistryWatch

from ._drill import wait_until

pytestmark = pytest.mark.lab
API = "/api/2.0/mlflow"
OWNER = {"run_id": "test", "pid": 0}


def _registry(lab: LabClient, region: str) -> str:
    return f"http://127.0.0.1:{lab.info.registry_ports[region]}"


def _versions(lab: LabClient) -> dict[str, Any]:
    return {n["name"]: n["model_version"] for r in lab.status()["regions"] for n in r["nodes"]}


def test_nodes_resolve_production_through_their_regions_registry(lab: LabClient) -> None:
    assert lab.info.registry_model == "lab-model@production"
    assert set(_versions(lab).values()) == {"1"}, "every node serves the approved version"
    for region in ("lab-east", "lab-west"):
        alias = "registered-models/alias?name=lab-model&alias=production"
        status, body = HttpClient().json("GET", f"{_registry(lab, region)}{API}/{alias}")
        assert status == 200 and body["model_version"]["version"] == "1", (region, body)
        tags = {t["key"]: t["value"] for t in body["model_version"]["tags"]}
        assert len(tags["sha256"]) == 64
    # The DR registry is a read-only replica; a write in the primary reaches it by copy.
    refused, _ = HttpClient().json(
        "POST", f"{_registry(lab, 'lab-west')}{API}/registered-models/create", {"name": "x"}
    )
    assert refused == 403
    watch = RegistryWatch(
        {r: _registry(lab, r) for r in ("lab-east", "lab-west")},
        "lab-east",
        "lab-model@production",
        "copytest",
        HttpClient(),
    )
    try:
        assert watch.change(1)["ok"]
        assert watch.audit("lab-east")["surviving"] == [1]
        interval = lab.status()["data"]["registry"]
        assert wait_until(lambda: watch.audit("lab-west")["surviving"] == [1], timeout=12), (
            "the DR copy follows within the copy interval",
            interval,
        )
    finally:
        watch.cleanup()


def test_a_lost_registry_keeps_loaded_nodes_serving_and_stops_new_ones(lab: LabClient) -> None:
    since = time.time()
    lost = lab.call("/faults/lose-model-registry", region="lab-east", owner=OWNER)["result"]
    assert lost["versions"] >= 2 and lost["last_copied_at"] is not None
    assert not (Path(lab.state_dir) / "registry-lab-east.db").exists(), "its database is gone"
    before = _versions(lab)
    lab.call("/faults/kill-nodes", region="lab-east", count=1, owner=OWNER)

    def waiting() -> list[dict[str, Any]]:
        return [r for r in lab.ground_truth(since) if r["kind"] == "node_model_unavailable"]

    assert wait_until(waiting, timeout=30), "a replacement waits for the registry"
    assert "registry" in str(waiting()[0]["reason"]), waiting()[0]
    assert len(_versions(lab)) == len(before) - 1, "the others keep serving their loaded model"
    with pytest.raises(LabError, match="read-only replica"):
        lab.call("/faults/move-model-alias", region="lab-west", owner=OWNER)
    restored = lab.call("/actions/restore-model-registry", region="lab-east", source="lab-west")
    assert restored["restored"], restored
    assert restored["result"]["from"] == "lab-west"
    assert lab.call("/rollbacks/restore-nodes", region="lab-east")["restored"]
    assert set(_versions(lab).values()) == {"1"}
    assert not lab.problems()


def test_moving_the_alias_reloads_every_node_until_it_moves_back(lab: LabClient) -> None:
    moved = lab.call("/faults/move-model-alias", region="lab-east", version="2", owner=OWNER)
    assert moved["result"] == {"alias": "production", "previous": "1", "version": "2"}
    assert wait_until(lambda: set(_versions(lab).values()) == {"2"}, timeout=10)
    problems = lab.problems()
    assert any("serves model version 2, not production 1" in p for p in problems), problems
    restored = lab.call("/actions/restore-model-alias", region="lab-east")
    assert restored["restored"], restored
    assert set(_versions(lab).values()) == {"1"}, "nominal waits for every node to reload"
    assert not lab.problems()


def test_reset_repairs_a_lost_registry_and_a_moved_alias(lab: LabClient) -> None:
    lab.call("/faults/move-model-alias", region="lab-east", owner=OWNER)
    lab.call("/faults/lose-model-registry", region="lab-west", owner=OWNER)
    assert lab.reset()["restored"]
    assert not lab.problems()
    registry = lab.status()["data"]["registry"]
    assert registry["production"] == {"lab-east": "1", "lab-west": "1"}


def test_reset_rebuilds_the_registry_when_both_regions_lost_it(lab: LabClient) -> None:
    for region in ("lab-east", "lab-west"):
        lab.call("/faults/lose-model-registry", region=region, owner=OWNER)
    assert any("does not answer" in p for p in lab.problems())
    lab.reset()
    assert not lab.problems()
    registry = lab.status()["data"]["registry"]
    assert registry["production"] == {"lab-east": "1", "lab-west": "1"}


class _LostArtifactStore:
    """A region's artifact store (a test double) whose model artifact is gone for good."""

    bucket = "lost"

    def put(self, key: str, body: bytes, metadata: dict[str, str]) -> str:
        return "1"

    def get(self, key: str, version: str | None = None) -> tuple[bytes, dict[str, str]]:
        error = {"Error": {"Code": "NoSuchKey", "Message": "gone"}}
        raise ClientError(error, "GetObject")  # type: ignore[arg-type]


def test_a_reset_with_registries_and_artifact_lost_reports_instead_of_failing(
    tmp_path: Path,
) -> None:
    """Nothing to rebuild the registries from: the reset finishes and says what is off
    (the lab's reset once failed with the storage error, and no drill could heal it)."""
    (tmp_path / "logs").mkdir()
    store = _LostArtifactStore()
    registry = ModelRegistry(
        "east", "west", {"east": store, "west": store},  # type: ignore[dict-item]
        tmp_path, copy_interval=5.0, record=lambda kind, **detail: None,
    )  # fmt: skip
    try:
        registry.reset()
        assert registry.problems(), "a registry without the model is not nominal"
    finally:
        registry.stop()
