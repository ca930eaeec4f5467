"""Running probe-set checks against a live target."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aidrill.measure import LatencyHistogram
from aidrill.probes._sets import InferenceCheck

logger = logging.getLogger(__name__)


def run_inference_check(check: InferenceCheck, inference: str, golden_set: Path) -> dict[str, Any]:
    """Golden-set requests to the inference endpoint, held to the check's thresholds."""
    samples = json.loads(golden_set.read_text())["samples"]
    address = urlsplit(inference)
    # The same evenly spread requests every time: a healthy system then scores the same
    # quality on every check, so the steady state never fails by the luck of the draw.
    step = max(1, len(samples) // max(1, check.requests))
    chosen = samples[::step][: check.requests]
    histogram = LatencyHistogram()
    outcomes: list[tuple[bool, bool]] = []

    def ask(sample: dict[str, Any]) -> None:
        started = time.perf_counter()
        ok, correct = False, False
        conn = HTTPConnection(address.hostname or "127.0.0.1", address.port or 80,
                              timeout=check.timeout)  # fmt: skip
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
