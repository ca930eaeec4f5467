"""Running probe-set checks against a live target."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aidrill._http import HttpClient
from aidrill.load.protocols import StreamFailed, protocol_for
from aidrill.load.scorers import expectation, score
from aidrill.measure import LatencyHistogram
from aidrill.probes.sets import CheckOutcome, InferenceCheck

if TYPE_CHECKING:
    from aidrill.targets import Endpoints

logger = logging.getLogger(__name__)


def run_inference_check(
    check: InferenceCheck, endpoints: Endpoints, http: HttpClient | None = None
) -> CheckOutcome:
    """Golden-set requests to the inference endpoint in its protocol, each answer
    scored against its sample, held to the check's thresholds, through the run's one
    HTTP client (the plan's headers and TLS)."""
    client = http or HttpClient()
    protocol = protocol_for(endpoints.protocol)
    samples = json.loads(endpoints.golden_set.read_text())["samples"]
    url = endpoints.inference.rstrip("/") + protocol.path
    # The same evenly spread requests every time: a healthy system then scores the same
    # quality on every check, so the steady state never fails by the luck of the draw.
    step = max(1, len(samples) // max(1, check.requests))
    chosen = samples[::step][: check.requests]
    histogram = LatencyHistogram()
    outcomes: list[tuple[bool, float]] = []

    def ask(sample: dict[str, Any]) -> None:
        started = time.perf_counter()
        body = protocol.body(sample)
        extra = protocol.headers(url, body) if protocol.signs else None
        status, answer = client.post_raw(url, body, check.timeout, protocol.content_type, extra)
        ok = status == 200
        quality = 0.0
        if ok:
            try:
                quality = score(expectation(sample), protocol.read(answer))
            except StreamFailed:  # broken off by the server: failed, not wrong
                ok = False
            except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                quality = 0.0
        histogram.record(time.perf_counter() - started)
        outcomes.append((ok, quality))

    try:
        with ThreadPoolExecutor(check.concurrency) as pool:
            list(pool.map(ask, chosen))
    finally:
        if http is None:  # a client made here is closed here
            client.close()
    successes = sum(ok for ok, _ in outcomes)
    success_ratio = successes / len(outcomes)
    quality = sum(q for ok, q in outcomes if ok) / successes if successes else 0.0
    p95 = histogram.quantile(0.95) or 0.0
    holds = (
        success_ratio >= check.success_ratio
        and p95 <= check.p95_latency
        and quality >= check.quality
    )
    figures = {
        "success_ratio": round(success_ratio, 3),
        "p95_latency": round(p95, 4),
        "quality": round(quality, 3),
    }
    return CheckOutcome(check.name, holds, figures)
