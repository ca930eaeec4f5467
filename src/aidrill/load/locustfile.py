"""aidrill's locustfile: golden-set inference requests, every answer scored.

Runs only inside Locust's own process (``python -m locust -f``), started by
:class:`aidrill.load.LoadGenerator`; settings arrive in ``AIDRILL_*`` variables.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, constant_throughput, events, task

from aidrill.load._aggregator import BucketAggregator

_GOLDEN = json.loads(Path(os.environ["AIDRILL_GOLDEN_SET"]).read_text())["samples"]
_RATE = float(os.environ.get("AIDRILL_RATE_PER_USER", "3"))
_TIMEOUT = float(os.environ.get("AIDRILL_REQUEST_TIMEOUT", "2"))
_BUCKET = float(os.environ.get("AIDRILL_BUCKET_SECONDS", "1"))
_TIMELINE = Path(os.environ["AIDRILL_TIMELINE"])
_READY = Path(os.environ["AIDRILL_READY_FILE"])


class InferenceUser(HttpUser):
    wait_time = constant_throughput(_RATE)

    def on_start(self) -> None:
        self.samples = random.Random(id(self)).sample(_GOLDEN, len(_GOLDEN))
        self.position = 0

    @task
    def predict(self) -> None:
        sample = self.samples[self.position % len(self.samples)]
        self.position += 1
        self.client.post(
            "/predict",
            json={"features": sample["features"]},
            name="predict",
            timeout=_TIMEOUT,
            context={"expected": sample["label"]},
        )


def _on_request(
    aggregator: BucketAggregator,
    response_time: float,
    start_time: float | None = None,
    response: Any = None,
    context: dict[str, Any] | None = None,
    exception: BaseException | None = None,
    **_: Any,
) -> None:
    began = start_time if start_time is not None else time.time() - response_time / 1000
    ok = exception is None
    correct: bool | None = None
    region = None
    if ok and response is not None:
        region = response.headers.get("X-Aidrill-Region")
        expected = (context or {}).get("expected")
        try:
            correct = expected is not None and response.json()["label"] == expected
        except (ValueError, KeyError, TypeError):
            correct = False
    aggregator.add(began, response_time / 1000, ok, correct, region)


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_: Any) -> None:
    aggregator = BucketAggregator(_TIMELINE, _BUCKET, grace=_TIMEOUT + 0.5)
    environment.events.request.add_listener(lambda **kwargs: _on_request(aggregator, **kwargs))

    def flush_forever() -> None:
        while True:
            gevent.sleep(_BUCKET / 2)
            aggregator.flush(time.time())

    flusher = gevent.spawn(flush_forever)
    parent = os.getppid()

    def quit_when_orphaned() -> None:
        # A killed `aidrill run` must not leave load running against the target.
        while os.getppid() == parent:
            gevent.sleep(0.5)
        if environment.runner is not None:
            environment.runner.quit()

    gevent.spawn(quit_when_orphaned)

    def on_test_start(**_: Any) -> None:
        _READY.write_text(str(time.time()))

    def on_quitting(**_: Any) -> None:
        flusher.kill()
        aggregator.flush(time.time(), final=True)
        aggregator.close()

    environment.events.test_start.add_listener(on_test_start)
    environment.events.quitting.add_listener(on_quitting)
