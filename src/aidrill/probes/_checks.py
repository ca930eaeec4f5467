"""Running probe-set checks against a live target."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from typing import Any

from aidrill.lab import LabClient
from aidrill.measure import LatencyHistogram
from aidrill.probes._sets import InferenceCheck, LabCapacityCheck, LabDataCheck

logger = logging.getLogger(__name__)


def run_inference_check(check: InferenceCheck, lab: LabClient) -> dict[str, Any]:
    samples = json.loads(lab.info.golden_set.read_text())["samples"]
    # The same evenly spread requests every time: a healthy system then scores the same
    # quality on every check, so the steady state never fails by the luck of the draw.
    step = max(1, len(samples) // max(1, check.requests))
    chosen = samples[::step][: check.requests]
    histogram = LatencyHistogram()
    outcomes: list[tuple[bool, bool]] = []

    def ask(sample: dict[str, Any]) -> None:
        started = time.perf_counter()
        ok, correct = False, False
        conn = HTTPConnection("127.0.0.1", lab.info.router_port, timeout=check.timeout)
        try:
            conn.request(
                "POST",
                "/predict",
                json.dumps({"entity": sample["entity"], "features": sample["features"]}),
                {"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            body = response.read()
            ok = response.status == 200
            correct = ok and json.loads(body).get("label") == sample["label"]
        except (OSError, ValueError):
            ok = False
        finally:
            conn.close()
        histogram.record(time.perf_counter() - started)
        outcomes.append((ok, correct))

    with ThreadPoolExecutor(check.concurrency) as pool:
        list(pool.map(ask, chosen))
    successes = sum(ok for ok, _ in outcomes)
    success_ratio = successes / len(outcomes)
    quality = sum(c for _, c in outcomes) / successes if successes else 0.0
    p95 = histogram.quantile(0.95) or 0.0
    holds = (
        success_ratio >= check.success_ratio
        and p95 <= check.p95_latency
        and quality >= check.quality
    )
    return {
        "check": check.name,
        "holds": holds,
        "success_ratio": round(success_ratio, 3),
        "p95_latency": round(p95, 4),
        "quality": round(quality, 3),
    }


def run_lab_capacity_check(check: LabCapacityCheck, lab: LabClient) -> dict[str, Any]:
    status = lab.status()
    holds = bool(status["at_capacity"])
    return {
        "check": check.name,
        "holds": holds,
        "serving_capacity": status["serving_capacity"],
        "nominal_capacity": status["nominal_capacity"],
        "faults": len(status["faults"]),
    }


def run_lab_data_check(check: LabDataCheck, lab: LabClient) -> dict[str, Any]:
    data = lab.data()
    problems = []
    replication = data["replication"]
    replicating = not replication["paused"] and not data["failed_regions"]
    if replicating and replication["backlog_seconds"] > check.max_replication_backlog:
        problems.append(f"replication backlog {replication['backlog_seconds']}s")
    features = data["features"]
    if not features["servers"][features["active"]]["alive"]:
        problems.append(f"the feature store's primary in {features['active']} is down")
    for region in data["serving"]:
        if not data["index"][region]["loaded"]:
            problems.append(f"no vector index serves in {region}")
    for job, state in data["pipelines"].items():
        if not state["running"]:
            problems.append(f"the {job} pipeline is not running")
    return {"check": check.name, "holds": not problems, "problems": problems}
