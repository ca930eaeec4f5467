"""Running probe-set checks against a live target."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aidrill._http import HttpClient
from aidrill.measure import LatencyHistogram
from aidrill.probes.sets import InferenceCheck

logger = logging.getLogger(__name__)


def run_inference_check(
    check: InferenceCheck, inference: str, golden_set: Path, http: HttpClient | None = None
) -> dict[str, Any]:
    """Golden-set requests to the inference endpoint, held to the check's thresholds,
    through the run's one HTTP client (the plan's headers and TLS)."""
    client = http or HttpClient()
    samples = json.loads(golden_set.read_text())["samples"]
    url = inference.rstrip("/") + "/predict"
    # The same evenly spread requests every time: a healthy system then scores the same
    # quality on every check, so the steady state never fails by the luck of the draw.
    step = max(1, len(samples) // max(1, check.requests))
    chosen = samples[::step][: check.requests]
    histogram = LatencyHistogram()
    outcomes: list[tuple[bool, bool]] = []

    def ask(sample: dict[str, Any]) -> None:
        started = time.perf_counter()
        body = json.dumps({"entity": sample["entity"], "features": sample["features"]})
        status, answer = client.post_raw(url, body.encode(), check.timeout)
        ok = status == 200
        try:
            correct = ok and json.loads(answer).get("label") == sample["label"]
        except (ValueError, AttributeError):
            correct = False
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
