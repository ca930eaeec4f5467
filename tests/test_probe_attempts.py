"""A steady-state inference check takes a missed sample again (``attempts``), keeps every
sample in the evidence, and only the last sample decides."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from aidrill.plan import ProtocolSettings
from aidrill.probes import CheckOutcome, InferenceCheck, decisive_outcomes
from aidrill.probes import _sample_inference as sample_inference


class _SlowAtFirst(BaseHTTPRequestHandler):
    """Answers the golden label; the first ``slow`` requests take 0.3 s each."""

    slow = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            delayed = type(self).slow > 0
            type(self).slow -= 1
        if delayed:
            time.sleep(0.3)
        body = json.dumps({"label": "cat"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def target(tmp_path: Path) -> Iterator[SimpleNamespace]:
    golden = tmp_path / "golden.json"
    samples = [{"entity": f"e{i}", "features": [0.1], "label": "cat"} for i in range(20)]
    golden.write_text(json.dumps({"samples": samples}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowAtFirst)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    endpoints = SimpleNamespace(inference=url, golden_set=golden, http=None,
                                protocol=ProtocolSettings())  # fmt: skip
    try:
        yield SimpleNamespace(endpoints=lambda: endpoints)
    finally:
        server.shutdown()
        server.server_close()


def _check(attempts: int) -> InferenceCheck:
    return InferenceCheck(
        type="inference", name="serves", requests=20, concurrency=4, success_ratio=0.95,
        p95_latency=0.2, quality=0.8, attempts=attempts, attempt_pause=0.1,
    )  # fmt: skip


def test_a_slow_first_sample_is_taken_again_and_both_are_kept(target: SimpleNamespace) -> None:
    _SlowAtFirst.slow = 20  # the whole first sample is slow
    outcomes: list[CheckOutcome] = []
    outcome = sample_inference(_check(2), target, "set", outcomes)
    assert outcome.holds
    assert [o.holds for o in outcomes] == [False, True]
    assert [o.figures["attempt"] for o in outcomes] == ["1 of 2", "2 of 2"]
    assert float(outcomes[0].figures["p95_latency"]) > 0.2
    # As probes.jsonl keeps them: the sample that decided, read back the same.
    assert decisive_outcomes([o.to_record() for o in outcomes]) == [outcomes[1]]


def test_without_attempts_one_slow_sample_fails_the_check(target: SimpleNamespace) -> None:
    _SlowAtFirst.slow = 20
    outcomes: list[CheckOutcome] = []
    assert not sample_inference(_check(1), target, "set", outcomes).holds
    assert len(outcomes) == 1 and "attempt" not in outcomes[0].figures


def test_a_check_that_keeps_missing_fails_after_its_last_attempt(
    target: SimpleNamespace,
) -> None:
    _SlowAtFirst.slow = 60  # slow for all three samples
    outcomes: list[CheckOutcome] = []
    assert not sample_inference(_check(3), target, "set", outcomes).holds
    assert [o.holds for o in outcomes] == [False, False, False]
    assert decisive_outcomes([o.to_record() for o in outcomes]) == [outcomes[2]]
