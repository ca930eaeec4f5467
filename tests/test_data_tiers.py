"""The lab's stateful tiers under faults: real Redis, real moto S3, real FAISS."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from aidrill import _evidence as evidence
from aidrill._evidence import CANARY_AUDIT_FILE, CANARY_FILE
from aidrill.errors import LabNotRunningError
from aidrill.lab import LabClient
from aidrill.lab.actions import (
    pause_replication,
    resume_replication,
    throttle_storage,
    unthrottle_storage,
)
from aidrill.lab.data._features import RedisServer
from aidrill.lab.data._redis import redis_client
from aidrill.lab.data._storage import s3_client
from aidrill.lab.network._proxy import ProxyHub
from aidrill.measure import Bucket, CanaryWrite, feature_store_rpo, parse_records
from aidrill.plan import load_plan
from aidrill.probes import LabCapacityCheck
from aidrill.targets import Address, Endpoints
from aidrill.targets.lab._adapter import LabTarget
from aidrill.targets.observer import TierObserver

from ._drill import result, run_aidrill, run_dir_of, wait_until, write_experiment
from .conftest import PLAN

pytestmark = pytest.mark.lab


def _mean_quality(buckets: list[Bucket]) -> float:
    scored = sum(b.scored for b in buckets)
    assert scored, "no scored answers in this stretch"
    return sum(b.correct for b in buckets) / scored


def test_missing_features_lower_the_measured_quality(workspace: Path, lab: LabClient) -> None:
    name = write_experiment(
        workspace,
        "feature-store-failover.yaml",
        "features-evicted.yaml",
        # The quality before the fault needs only the steady state's seconds of answers.
        extension={"components": ["inference", "feature-store"], "observe-before": "2s"},
        method=[
            {
                "type": "action",
                "name": "evict-every-online-feature-row",
                "provider": {
                    "type": "python",
                    "module": "aidrill.lab.actions",
                    "func": "drop_online_features",
                    "arguments": {"region": "lab-east", "fraction": 1.0},
                },
                "pauses": {"after": 8},
            }
        ],
        rollbacks=[
            {
                "type": "action",
                "name": "rebuild-the-online-store-from-the-offline-store",
                "provider": {
                    "type": "python",
                    "module": "aidrill.lab.actions",
                    "func": "rebuild_online_features",
                },
            }
        ],
    )
    done = run_aidrill(workspace, lab.state_dir, "run", name)
    run_dir = run_dir_of(workspace)
    assert done.returncode == 1, done.stdout + done.stderr  # the drill shows the impact
    events = evidence.read_events(run_dir)
    t_fault = next(e.time for e in events if e.kind == "fault_injected")
    t_end = next(e.time for e in events if e.kind == "rollbacks_started")
    buckets = evidence.read_timeline(run_dir)
    before = [b for b in buckets if b.end <= t_fault]
    during = [b for b in buckets if t_fault + 1 <= b.start and b.end <= t_end]
    assert _mean_quality(before) >= 0.8, "the steady state held before the fault"
    assert _mean_quality(during) < 0.6, "answers on default features are measurably worse"
    assert _mean_quality(during) < _mean_quality(before) - 0.2
    measured = result(run_dir)
    inference = next(c for c in measured["components"] if c["tier"] == "inference")
    assert inference["achieved"]["impact"] is True
    assert inference["achieved"]["recovered"] is False
    rebuilt = [r for r in measured["recoveries"] if "rows" in r]
    assert rebuilt and rebuilt[0]["rows"] == 400
    assert lab.data()["features"]["active"] == "lab-east"


def test_a_corrupt_model_artifact_is_refused_and_versioning_keeps_the_good_one(
    lab: LabClient,
) -> None:
    since = time.time()
    owner = {"run_id": "test", "pid": 0}
    lab.call("/faults/delete-model-artifact", region="lab-east", mode="overwrite", owner=owner)
    lab.call("/faults/kill-nodes", region="lab-east", count=1, owner=owner)
    deadline = time.monotonic() + 30
    refused: list[dict[str, object]] = []
    while time.monotonic() < deadline and not refused:
        refused = [r for r in lab.ground_truth(since) if r["kind"] == "node_model_unavailable"]
        time.sleep(0.2)
    assert refused, "a replacement node tried to boot and is waiting for a good model"
    assert "corrupt" in str(refused[0]["reason"])
    waiting = refused[0]["node"]
    assert all(n["name"] != waiting for r in lab.status()["regions"] for n in r["nodes"]), (
        "a node without a model that verifies never joins the balancer"
    )
    recovered = lab.call("/actions/recover-model-artifact", region="lab-east")
    assert recovered["restored"], recovered
    assert lab.call("/rollbacks/restore-nodes", region="lab-east")["restored"]
    client = s3_client(lab.info.storage["lab-east"])
    versions = client.list_object_versions(Bucket="aidrill-lab-east", Prefix="models/model.npz")
    published = next(r for r in lab.ground_truth(0) if r["kind"] == "model_published")
    kept = {v["VersionId"] for v in versions["Versions"]}
    assert published["version_id"] in kept, "versioning kept the original version"
    assert len(kept) >= 3, "original, corrupt overwrite and the restored copy"


def test_the_capacity_check_answers_while_the_artifact_store_crawls(lab: LabClient) -> None:
    """A steady-state capacity check does not wait on the data tiers' artifact download.
    The lab's full status downloads the model artifact to verify it, which through a
    throttled store outlasts the client's timeout: storage-throttle's steady state after
    the method read that timeout as "the lab does not answer" and the drill deviated."""
    config = {"aidrill_state_dir": str(lab.state_dir)}
    throttle_storage(lab.info.primary, bandwidth=64 * 1024, configuration=config)
    try:
        time.sleep(2.5)  # past the lab's 2 s memo of its last artifact check
        with pytest.raises(LabNotRunningError, match="timed out"):
            lab.status()  # the premise: the full status waits on the crawling download
        check = LabCapacityCheck(type="lab-capacity", name="nominal-gpu-capacity")
        result = LabTarget(lab.state_dir, load_plan(PLAN)).run_check(check)
        assert result.holds and result.figures["faults"] == 1, result
    finally:
        unthrottle_storage(lab.info.primary, configuration=config)


def test_the_fault_proxy_throttles_pauses_and_resets() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def echo() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the test closed the listening socket
            threading.Thread(target=_echo_connection, args=(conn,), daemon=True).start()

    threading.Thread(target=echo, daemon=True).start()
    hub = ProxyHub()
    try:
        proxy = hub.add("test", port)
        payload = b"x" * 64 * 1024
        assert _round_trip(proxy.port, payload) < 0.5
        proxy.set_fault(bandwidth=128 * 1024)
        assert _round_trip(proxy.port, payload) >= 0.45, "64 KiB at 128 KiB/s"
        proxy.set_fault(mode="pause")
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5) as conn:
            conn.sendall(b"held")
            with pytest.raises(TimeoutError):
                conn.recv(4)
            proxy.clear()
            conn.settimeout(2)
            assert conn.recv(4) == b"held", "a paused link delivers once resumed"
        proxy.set_fault(mode="reset")
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=1) as conn:
            conn.settimeout(1)
            try:
                closed = conn.recv(1) == b""
            except ConnectionResetError:
                closed = True
            assert closed, "a reset link closes at once"
    finally:
        hub.stop()
        stop.set()
        server.close()


def _echo_connection(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def _round_trip(port: int, payload: bytes) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(payload)
        received = 0
        while received < len(payload):
            chunk = conn.recv(65536)
            assert chunk
            received += len(chunk)
    return time.perf_counter() - started


def test_the_canary_audit_counts_only_writes_it_could_see(tmp_path: Path) -> None:
    """A canary write in flight while the audit reads must not count as lost.

    Each write crosses a 40 ms proxy both ways, so one is in flight most of the time;
    a write sent just before the audit's time can land after the read: only writes
    answered before the audit began count as acknowledged, or it would show up as a
    lost write (a phantom RPO). The writer is its own process here, as in a run.
    """
    redis_server = RedisServer("audit", tmp_path)
    hub = ProxyHub()
    proxy = hub.add("slow-store", redis_server.port)
    proxy.set_fault(latency=0.04)
    endpoints = Endpoints(
        inference="http://127.0.0.1:1",
        golden_set=tmp_path / "none.json",
        primary="east",
        dr="west",
        feature_store=Address("127.0.0.1", proxy.port),
    )
    prober = TierObserver(endpoints, tmp_path, "audit-test", max_duration=6.0)
    audits = []
    try:
        canary = prober.start_canary()
        assert canary is not None
        assert wait_until(lambda: len(evidence.read_jsonl(tmp_path / CANARY_FILE)[0]) >= 5, 10.0), (
            "the writer process is writing"
        )
        for pause in (0.13, 0.07, 0.11, 0.05, 0.17, 0.09, 0.15, 0.06, 0.12, 0.1):
            prober.audit()
            audits.append(json.loads((tmp_path / CANARY_AUDIT_FILE).read_text()))
            time.sleep(pause)
        assert canary.wait(timeout=10) == 0, "the canary stops by itself at its deadline"
    finally:
        prober.halt()
        hub.stop()
        redis_server.kill()
    writes = parse_records(CanaryWrite.from_record, evidence.read_jsonl(tmp_path / CANARY_FILE)[0])
    # A write the store did not answer within the writer's 0.3 s (a busy moment across
    # the 40 ms proxy) is not acknowledged and never counts: the audit is judged on the
    # rest, which must be nearly all.
    acknowledged = [w for w in writes if w.ok]
    assert len(acknowledged) >= 20 and len(writes) - len(acknowledged) <= 2, writes
    for audit in audits:
        rpo = feature_store_rpo(writes, audit["surviving"], audit["time"])
        assert rpo.seconds == 0.0, (rpo, audit["time"])


def _link_status(port: int) -> str | None:
    with contextlib.closing(redis_client(port, 1.0)) as client:
        return client.info("replication").get("master_link_status")


def test_a_broken_replication_link_cuts_the_replica_off_until_resumed(lab: LabClient) -> None:
    """``pause_replication(mode: break)`` resets the link: the replica loses its primary,
    nothing written meanwhile reaches it, and after the rollback it resyncs."""
    config = {"aidrill_state_dir": str(lab.state_dir)}
    info = lab.info
    replica_port = info.feature_region_ports[info.dr]
    assert info.features_port is not None
    assert _link_status(replica_port) == "up"
    pause_replication(info.primary, mode="break", configuration=config)
    try:
        with contextlib.closing(redis_client(info.features_port, 1.0)) as primary:
            primary.set("break-test", "written while the link was broken")
        assert wait_until(lambda: _link_status(replica_port) == "down", 10.0)
        time.sleep(1.0)
        with contextlib.closing(redis_client(replica_port, 1.0)) as replica:
            assert replica.get("break-test") is None, "nothing crosses a broken link"
    finally:
        resume_replication(configuration=config)

    def caught_up() -> bool:
        with contextlib.closing(redis_client(replica_port, 1.0)) as replica:
            return replica.get("break-test") is not None

    assert wait_until(lambda: _link_status(replica_port) == "up" and caught_up(), 15.0)
