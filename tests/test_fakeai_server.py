"""The OpenAI-compatible completions and embeddings APIs against a server nobody here
wrote: FakeAI (PyPI ``fakeai``, a FastAPI server that simulates an OpenAI/NIM
deployment with no model weights), as a subprocess over loopback (issue 27, item 6).

- ``openai-completions``, streamed: FakeAI writes made-up text a token at a time, its
  time to first token and inter-token latency set in its environment, so the load
  must time each token within those bounds; its text is not an answer to anything, so
  the golden set asks only for some words (``regex``).
- ``openai-embeddings``: FakeAI's vectors are fixed per input text. The golden set is
  what a team records from its healthy endpoint: here through the official ``openai``
  client, then aidrill's probe and load score the same vectors 1.0, and a golden set
  recorded from other texts scores 0 (caught as a floor miss, never a crash).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aidrill.load import LoadGenerator, LoadProfile
from aidrill.plan import ProtocolSettings
from aidrill.probes import InferenceCheck, run_inference_check
from aidrill.targets import Endpoints
from tests._subprocess_server import answers_get, free_port, load_until, served

TTFT_MS, ITL_MS = 60, 15  # exactly these (no variance): what the streamed load must see
MODEL = "openai/gpt-oss-20b"
TEXTS = ["a delayed parcel", "a refund request", "a password reset", "an invoice query"]
COMPLETIONS = {"kind": "openai-completions", "model": MODEL, "stream": True, "max-tokens": 12}
EMBEDDINGS = {"kind": "openai-embeddings", "model": "text-embedding-3-small"}


@pytest.fixture(scope="module")
def fakeai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("fakeai")
    port = free_port()
    program = shutil.which("fakeai", path=str(Path(sys.executable).parent))
    assert program is not None, "pip install fakeai (the test extras)"
    command = [program, "server", "--host", "127.0.0.1", "--port", str(port)]
    # Its application reads its generation settings from the environment (the command
    # line's --ttft and --itl do not reach it); no added delay or variance.
    settings = {
        "TTFT_MS": TTFT_MS,
        "TTFT_VARIANCE_PERCENT": 0,
        "ITL_MS": ITL_MS,
        "ITL_VARIANCE_PERCENT": 0,
        "RESPONSE_DELAY": 0,
        "RANDOM_DELAY": "false",
    }
    env = {f"FAKEAI_GENERATION__{key}": str(value) for key, value in settings.items()}
    with served(command, port, folder, folder / "server.log", answers_get("/health"), env) as url:
        yield url


def _write(tmp_path: Path, name: str, golden: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(golden))
    return path


def _recorded(url: str, texts: list[str]) -> list[list[float]]:
    """The vectors the healthy endpoint gives, read by the official client."""
    import openai

    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10) as client:
        reply = client.embeddings.create(model=EMBEDDINGS["model"], input=texts)
    return [item.embedding for item in sorted(reply.data, key=lambda item: item.index)]


def _embedding_golden(inputs: list[str], vectors: list[list[float]]) -> dict[str, Any]:
    return {
        "samples": [
            {"input": text, "expect": {"scorer": "embedding-cosine", "value": vector,
                                       "floor": 0.99}}
            for text, vector in zip(inputs, vectors, strict=True)
        ]
    }  # fmt: skip


def test_embeddings_recorded_from_the_healthy_server_score_full(
    fakeai: str, tmp_path: Path
) -> None:
    vectors = _recorded(fakeai, TEXTS)
    assert len({len(v) for v in vectors}) == 1 and len(vectors[0]) > 8
    golden = _write(tmp_path, "golden.json", _embedding_golden(TEXTS, vectors))
    endpoints = Endpoints(fakeai, golden, "east", "west",
                          protocol=ProtocolSettings(**EMBEDDINGS))  # fmt: skip
    check = InferenceCheck(type="inference", name="embeddings", requests=8,
                           success_ratio=1.0, p95_latency=5.0, quality=1.0)  # fmt: skip
    outcome = run_inference_check(check, endpoints)
    assert outcome.holds and outcome.figures["quality"] == 1.0, outcome

    # Each text expecting another text's vector: every answer is a miss, scored 0.
    shifted = _write(tmp_path, "shifted.json",
                     _embedding_golden(TEXTS, vectors[1:] + vectors[:1]))  # fmt: skip
    endpoints = Endpoints(fakeai, shifted, "east", "west",
                          protocol=ProtocolSettings(**EMBEDDINGS))  # fmt: skip
    outcome = run_inference_check(check, endpoints)
    assert outcome.figures["success_ratio"] == 1.0 and outcome.figures["quality"] == 0.0, outcome
    assert not outcome.holds


def _load_scores_every_answer(
    url: str, golden: Path, run_dir: Path, settings: dict[str, Any], rate: float
) -> list[Any]:
    """Locust against FakeAI until 30 answers: at least 20, none failed, every one
    scored right; its buckets."""
    generator = LoadGenerator(
        url, golden, run_dir, LoadProfile(users=2, rate_per_user=rate),
        max_duration=30, protocol=ProtocolSettings(**settings),
    )  # fmt: skip
    buckets = load_until(generator, run_dir, 30)
    assert sum(b.requests for b in buckets) >= 20, buckets
    assert sum(b.failures for b in buckets) == 0, buckets
    assert sum(b.correct for b in buckets) == sum(b.scored for b in buckets) > 0, buckets
    return buckets


def test_the_load_scores_embeddings_through_locust(fakeai: str, tmp_path: Path) -> None:
    golden = _write(tmp_path, "golden.json", _embedding_golden(TEXTS, _recorded(fakeai, TEXTS)))
    _load_scores_every_answer(fakeai, golden, tmp_path, EMBEDDINGS, rate=4)


def test_the_streamed_load_times_completions_tokens(fakeai: str, tmp_path: Path) -> None:
    golden = _write(tmp_path, "golden.json", {"samples": [
        {"prompt": f"Write about {text}.", "expect": {"scorer": "regex", "value": r"\w+"}}
        for text in TEXTS
    ]})  # fmt: skip
    buckets = _load_scores_every_answer(fakeai, golden, tmp_path, COMPLETIONS, rate=3)
    streamed = [b for b in buckets if b.ttft_p95 is not None]
    assert streamed, buckets
    for bucket in streamed:
        # The first token no sooner than the server's TTFT, the others ITL apart (a
        # second is far beyond anything this server does).
        assert TTFT_MS / 1000 * 0.9 <= bucket.ttft_p95 < 1.0, bucket
        assert bucket.itl_p95 is not None and ITL_MS / 1000 * 0.8 <= bucket.itl_p95 < 1.0
        assert bucket.tokens > 0, bucket
