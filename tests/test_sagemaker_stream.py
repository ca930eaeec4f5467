"""SageMaker's response streams (``InvokeEndpointWithResponseStream``): the probes and
the load call a test double of a TGI container behind SageMaker (moto's server does
not speak the streamed call), signed by botocore; boto3's own client reads the same
double first, so its event-stream framing is AWS's and not only ours."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EventStreamError

from aidrill.load import LoadGenerator, LoadProfile
from aidrill.load.protocols import StreamFailed, protocol_for
from aidrill.load.protocols.sagemaker import EventStreamLines
from aidrill.plan import ProtocolSettings
from aidrill.probes import InferenceCheck, golden_set_preflight, run_inference_check
from aidrill.targets import Endpoints
from tests._model_servers import CAPITALS, WRONG, _Server, event_message, model_server
from tests._subprocess_server import load_until

# A TGI container's request: the prompt as ``inputs``; the answer read per streamed
# event by the protocol's default (``token.text``).
_TEMPLATE = '{"inputs": {{ sample.prompt | tojson }}, "parameters": {"max_new_tokens": 16}}'
SETTINGS = ProtocolSettings(kind="sagemaker", model="llm-prod", region="eu-west-1",
                            stream=True, request=_TEMPLATE)  # fmt: skip
_PART = {":message-type": "event", ":event-type": "PayloadPart"}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    for key, value in {"AWS_ACCESS_KEY_ID": "AKIASTRANGER", "AWS_SECRET_ACCESS_KEY": "s3cret",
                       "AWS_REGION": "eu-west-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with model_server() as double:
        double.ttft, double.token_gap = 0.08, 0.03
        yield double


def _golden(tmp_path: Path) -> Path:
    path = tmp_path / "golden.json"
    samples = [{"id": country, "prompt": f"What is the capital of {country}?",
                "expect": {"scorer": "contains", "value": capital}}
               for country, capital in CAPITALS.items()]  # fmt: skip
    path.write_text(json.dumps({"samples": samples}))
    return path


def _endpoints(server: _Server, tmp_path: Path) -> Endpoints:
    return Endpoints(server.url, _golden(tmp_path), "eu-west-1", "eu-central-1",
                     protocol=SETTINGS)  # fmt: skip


def test_boto3_reads_the_doubles_event_stream_as_sagemakers(server: _Server) -> None:
    client = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="eu-west-1")
    body = json.dumps({"inputs": "What is the capital of Peru?"})
    reply = client.invoke_endpoint_with_response_stream(
        EndpointName="llm-prod", Body=body, ContentType="application/json"
    )
    parts = b"".join(event["PayloadPart"]["Bytes"] for event in reply["Body"])
    lines = [json.loads(line[5:]) for line in parts.split(b"\n") if line.startswith(b"data:")]
    assert "".join(line["token"]["text"] for line in lines) == "The capital of Peru is Lima. "

    server.stream_error_after = 2
    reply = client.invoke_endpoint_with_response_stream(
        EndpointName="llm-prod", Body=body, ContentType="application/json"
    )
    with pytest.raises(EventStreamError, match="ModelStreamError"):
        list(reply["Body"])
    reply["Body"].close()  # its connection left the pool: closed here, not by the GC
    client.close()


def test_the_probe_scores_a_streamed_sagemaker_answer_and_fails_a_broken_one(
    server: _Server, tmp_path: Path
) -> None:
    endpoints = _endpoints(server, tmp_path)
    check = InferenceCheck(type="inference", name="llm", requests=len(CAPITALS),
                           success_ratio=1.0, p95_latency=5.0, quality=0.8)  # fmt: skip
    outcome = run_inference_check(check, endpoints)
    assert (outcome.figures["success_ratio"], outcome.figures["quality"]) == (1.0, 0.8), outcome
    path, _ = server.requests[-1]
    assert path == "/endpoints/llm-prod/invocations-response-stream"

    server.stream_error_after = 3  # the model fails mid-answer: failed, not wrong
    outcome = run_inference_check(check, endpoints)
    assert outcome.figures["success_ratio"] == 0.0 and not outcome.holds, outcome
    problems, _ = golden_set_preflight(endpoints, 0.8, 2.0)
    assert problems and "answered none of the golden set's requests" in problems[0]


def test_the_streamed_load_times_sagemaker_tokens_and_counts_broken_streams(
    server: _Server, tmp_path: Path
) -> None:
    (tmp_path / "whole").mkdir()
    (tmp_path / "broken").mkdir()
    generator = LoadGenerator(server.url, _golden(tmp_path), tmp_path / "whole",
                              LoadProfile(users=3, rate_per_user=4), max_duration=30,
                              protocol=SETTINGS)  # fmt: skip
    buckets = load_until(generator, tmp_path / "whole", 30)
    answered = sum(b.requests for b in buckets)
    assert answered >= 30 and sum(b.failures for b in buckets) == 0, buckets
    quality = sum(b.correct for b in buckets) / sum(b.scored for b in buckets)
    expected = 1 - len(WRONG) / len(CAPITALS)
    assert quality == pytest.approx(expected, abs=0.12), quality
    streamed = [b for b in buckets if b.ttft_p95 is not None]
    assert streamed, buckets
    for bucket in streamed:
        # Its first token comes 80 ms in, the others 30 ms apart, each line split
        # across two messages: timed by the message that completed it.
        assert bucket.ttft_p95 is not None and 0.08 <= bucket.ttft_p95 < 1.0, bucket
        assert bucket.itl_p95 is not None and 0.024 <= bucket.itl_p95 < 1.0, bucket
        assert bucket.tokens > 0

    server.stream_error_after = 3
    generator = LoadGenerator(server.url, _golden(tmp_path), tmp_path / "broken",
                              LoadProfile(users=3, rate_per_user=4), max_duration=30,
                              protocol=SETTINGS)  # fmt: skip
    buckets = load_until(generator, tmp_path / "broken", 20)
    assert sum(b.requests for b in buckets) >= 20, buckets
    assert sum(b.failures for b in buckets) == sum(b.requests for b in buckets), buckets


def _stream(*parts: bytes) -> bytes:
    return b"".join(event_message(_PART, part) for part in parts)


def test_the_event_stream_reader_joins_parts_in_any_split_and_refuses_broken_framing() -> None:
    body = _stream(b'data:{"token": {"text": "Li', b'ma"}}\n\n{"token": {"text": " ok"}}',
                   b"\nplain words\n: a comment\nevent: x\n")  # fmt: skip
    whole = EventStreamLines()
    expected = whole.feed(body) + whole.end()
    assert expected == (b'data:{"token": {"text": "Lima"}}\ndata:{"token": {"text": " ok"}}\n'
                        b"data:plain words\n")  # fmt: skip
    trickled = EventStreamLines()
    assert b"".join(trickled.feed(body[i : i + 1]) for i in range(len(body))) + trickled.end() \
        == expected  # fmt: skip
    assert protocol_for(SETTINGS).read(body) == "Lima okplain words"

    corrupt = bytearray(body)
    corrupt[20] ^= 0xFF
    with pytest.raises(StreamFailed, match="garbled"):
        EventStreamLines().feed(bytes(corrupt))
    cut = EventStreamLines()
    cut.feed(body[:-5])
    with pytest.raises(StreamFailed, match="ended mid-message"):
        cut.end()
    failed = _stream(b'data:{"token": {"text": "x"}}\n') + event_message(
        {":message-type": "exception", ":exception-type": "InternalStreamFailure"}, b"{}"
    )
    with pytest.raises(StreamFailed, match="InternalStreamFailure"):
        protocol_for(SETTINGS).read(failed)


def test_a_streamed_answer_expression_reads_other_containers_events() -> None:
    """LMI's OpenAI-style chunks by default; a container of the team's own through
    ``protocol.answer``, applied to each event."""
    chunks = _stream(
        b'data: {"choices": [{"delta": {"content": "Hel"}}]}\n',
        b'data: {"choices": [{"delta": {"content": "lo"}}]}\ndata: [DONE]\n',
    )
    assert protocol_for(SETTINGS).read(chunks) == "Hello"
    own = SETTINGS.model_copy(update={"answer": "outputs[0].piece"})
    lines = _stream(b'{"outputs": [{"piece": "A"}]}\n{"outputs": [{"piece": "B"}]}\n')
    assert protocol_for(own).read(lines) == "AB"
