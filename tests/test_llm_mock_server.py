"""The OpenAI-compatible API against a server nobody here wrote: llm-mock-api (PyPI,
a FastAPI server answering ``/v1/chat/completions`` from rules, streamed as server-sent
events with its own framing: a role chunk, text chunks a set latency apart, a finish
chunk with usage, ``[DONE]``). It runs offline with no model weights, as a subprocess
over loopback. Its rules answer two of the ten capitals wrong, so the probe and the
streamed load (the real Locust subprocess) must score 0.8, and time each token
(issue 27, item 6)."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from aidrill.load import LoadGenerator, LoadProfile
from aidrill.plan import ProtocolSettings
from aidrill.probes import InferenceCheck, run_inference_check
from aidrill.targets import Endpoints
from tests._model_servers import CAPITALS, WRONG, chat_golden_set
from tests._subprocess_server import free_port, load_until, served

LATENCY_MS = 20  # between the server's chunks
SETTINGS = {"kind": "openai-chat", "model": "mock-1", "stream": True}


def _answers(url: str) -> bool:
    body = json.dumps({"model": "mock-1", "messages": [{"role": "user", "content": "ping"}]})
    request = urllib.request.Request(f"{url}/v1/chat/completions", data=body.encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=1) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture(scope="module")
def llm_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llm-mock-api on a free loopback port, its rules the capitals (two wrong, with a
    sentence around each answer); stopped after."""
    folder = tmp_path_factory.mktemp("llm-mock")
    rules = [
        {"when": f"capital of {country}",
         "reply": f"The capital of {country} is {WRONG.get(country, capital)}."}
        for country, capital in CAPITALS.items()
    ]  # fmt: skip
    (folder / "rules.json5").write_text(json.dumps({"rules": rules}))
    port = free_port()
    program = shutil.which("llm-mock-api", path=str(Path(sys.executable).parent))
    assert program is not None, "pip install llm-mock-api (the test extras)"
    command = [program, "start", "-p", str(port), "-H", "127.0.0.1", "-r",
               str(folder / "rules.json5"), "-l", str(LATENCY_MS), "-c", "4",
               "-f", "I do not know."]  # fmt: skip
    with served(command, port, folder, folder / "server.log", _answers) as url:
        yield url


def _golden(tmp_path: Path) -> Path:
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(chat_golden_set()))
    return path


def test_the_probe_scores_a_third_party_openai_servers_streamed_answers(
    llm_mock: str, tmp_path: Path
) -> None:
    endpoints = Endpoints(llm_mock, _golden(tmp_path), "east", "west",
                          protocol=ProtocolSettings(**SETTINGS))  # fmt: skip
    check = InferenceCheck(type="inference", name="mock", requests=len(CAPITALS),
                           success_ratio=1.0, p95_latency=5.0, quality=0.8)  # fmt: skip
    outcome = run_inference_check(check, endpoints)
    assert outcome.figures["success_ratio"] == 1.0, outcome
    assert outcome.figures["quality"] == pytest.approx(0.8), outcome
    assert not run_inference_check(check.model_copy(update={"quality": 0.9}), endpoints).holds


def test_the_streamed_load_times_a_third_party_servers_tokens(
    llm_mock: str, tmp_path: Path
) -> None:
    generator = LoadGenerator(
        llm_mock, _golden(tmp_path), tmp_path, LoadProfile(users=4, rate_per_user=4),
        max_duration=30, protocol=ProtocolSettings(**SETTINGS),
    )  # fmt: skip
    buckets = load_until(generator, tmp_path, 60)
    assert sum(b.requests for b in buckets) >= 40, buckets
    assert sum(b.failures for b in buckets) == 0, buckets
    quality = sum(b.correct for b in buckets) / sum(b.scored for b in buckets)
    assert quality == pytest.approx(0.8, abs=0.12), quality
    streamed = [b for b in buckets if b.ttft_p95 is not None]
    assert streamed, buckets
    for bucket in streamed:
        # Its chunks come LATENCY_MS apart: the gaps cannot be shorter, and nothing here
        # slows them by a second; its answers are several chunks long.
        assert bucket.itl_p95 is not None and LATENCY_MS / 1000 * 0.8 <= bucket.itl_p95 < 1.0
        assert bucket.ttft_p95 < 1.0 and bucket.tokens > 0, bucket
