"""The load's protocols against model servers shaped unlike the lab: the golden set
sent in each server's own protocol, every answer scored by its sample's rule, streamed
answers timed token by token (issue 27).

The servers are test doubles (``tests/_model_servers.py``) that get a known share of
answers wrong, so each test knows the quality a correct reading must measure. Locust
runs as the real subprocess a drill starts.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from aidrill import _evidence as evidence
from aidrill.cli.main import cli
from aidrill.lab.data._storage import spawn_moto_server
from aidrill.load import LoadGenerator, LoadProfile
from aidrill.load._aggregator import BucketAggregator
from aidrill.load.golden import golden_set_problems, golden_set_schema
from aidrill.load.protocols import protocol_for, protocol_names
from aidrill.load.scorers import SCORERS, score
from aidrill.measure import Bucket, HealthRule, bucket_state
from aidrill.plan import ProtocolSettings
from aidrill.probes import InferenceCheck, golden_set_preflight, run_inference_check
from aidrill.targets import Endpoints
from tests._model_servers import (
    chat_golden_set,
    model_server,
    tensor_golden_set,
    ticket_golden_set,
)

REPO = Path(__file__).resolve().parents[1]
_TICKET_TEMPLATE = '{"document": {"text": {{ sample.input | tojson }}}, "options": {"lang": "en"}}'

# name -> (protocol settings, golden set, the quality the double's answers deserve)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], float]] = {
    "openai-chat": ({"kind": "openai-chat", "model": "llama-3-8b"}, chat_golden_set(), 0.8),
    "openai-chat-stream": (
        {"kind": "openai-chat", "model": "llama-3-8b", "stream": True}, chat_golden_set(), 0.8
    ),
    "openai-completions-stream": (
        {"kind": "openai-completions", "model": "m", "stream": True}, chat_golden_set(), 0.8
    ),
    "open-inference": (
        {"kind": "open-inference", "model": "flowers", "output": "species"},
        tensor_golden_set(),
        0.6,
    ),
    "http": (
        {"kind": "http", "path": "/api/v3/classify", "request": _TICKET_TEMPLATE,
         "answer": "result.category"},
        ticket_golden_set(),
        0.75,
    ),
}  # fmt: skip


def _endpoints(url: str, golden: Path, settings: dict[str, Any]) -> Endpoints:
    return Endpoints(url, golden, "east", "west", protocol=ProtocolSettings(**settings))


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_protocol_scores_a_strangers_answers_as_they_deserve(
    case: str, tmp_path: Path
) -> None:
    settings, golden, deserved = CASES[case]
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(golden))
    assert golden_set_problems(golden, ProtocolSettings(**settings)) == []
    samples = len(golden["samples"])
    check = InferenceCheck(type="inference", name="all", requests=samples, success_ratio=1.0,
                           p95_latency=5.0, quality=deserved)  # fmt: skip
    with model_server() as server:
        outcome = run_inference_check(check, _endpoints(server.url, path, settings))
        asked = server.requests
    assert outcome.figures["success_ratio"] == 1.0, outcome
    assert outcome.figures["quality"] == pytest.approx(deserved), outcome
    assert outcome.holds, outcome
    assert len(asked) == samples
    route, body = asked[0]
    assert route == protocol_for(ProtocolSettings(**settings)).path
    if settings["kind"].startswith("openai"):
        # Deterministic where the server allows: the plan's model, temperature 0, a seed.
        assert (body["model"], body["temperature"], body["seed"]) == (settings["model"], 0.0, 0)
        assert body.get("stream", False) == settings.get("stream", False)


def test_a_golden_set_the_healthy_endpoint_fails_is_caught_before_the_drill(
    tmp_path: Path,
) -> None:
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(chat_golden_set()))
    settings = {"kind": "openai-chat", "model": "m"}
    with model_server() as server:
        endpoints = _endpoints(server.url, path, settings)
        problems, figures = golden_set_preflight(endpoints, 0.9, 2.0)
        assert problems and "the golden set scores 0.80 against the healthy endpoint" in problems[0]
        assert "the floor is 0.9" in problems[0] and figures["quality"] == 0.8
        assert golden_set_preflight(endpoints, 0.8, 2.0)[0] == []
        wrong_path = _endpoints(server.url, path, {**settings, "path": "/v1/chat"})
        problems, _ = golden_set_preflight(wrong_path, 0.8, 2.0)
        assert "answered none of the golden set's requests" in problems[0], problems
        server.down = True  # a dead engine behind a live socket
        assert "answered none" in golden_set_preflight(endpoints, 0.8, 2.0)[0][0]


def _timeline(run_dir: Path) -> list[Bucket]:
    return [b for b in evidence.read_timeline(run_dir) if b.series == "inference"]


@pytest.mark.parametrize("case", ["openai-chat-stream", "open-inference", "http"])
def test_the_load_speaks_each_protocol_and_times_every_streamed_token(
    case: str, tmp_path: Path
) -> None:
    settings, golden, deserved = CASES[case]
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(golden))
    with model_server() as server:
        generator = LoadGenerator(
            server.url, path, tmp_path, LoadProfile(users=4, rate_per_user=5), max_duration=30,
            protocol=ProtocolSettings(**settings),
        )  # fmt: skip
        generator.start()
        try:
            deadline = time.monotonic() + 20
            while len(server.requests) < 70 and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            generator.stop()
    buckets = _timeline(tmp_path)
    answered = sum(b.requests for b in buckets)
    assert answered >= 60 and sum(b.failures for b in buckets) == 0, buckets
    quality = sum(b.correct for b in buckets) / sum(b.scored for b in buckets)
    assert quality == pytest.approx(deserved, abs=0.12), quality
    streamed = [b for b in buckets if b.ttft_p95 is not None]
    if not settings.get("stream"):
        assert not streamed and all(b.tokens == 0 for b in buckets)
        return
    assert len(streamed) == len(buckets), "every bucket of a streamed load holds token times"
    for bucket in streamed:
        # The double waits 50 ms before the first token and 10 ms between tokens: the
        # load cannot see them sooner, and nothing here slows them by a second.
        assert 0.05 <= bucket.ttft_p95 < 1.0, bucket
        assert bucket.itl_p95 is not None and 0.01 <= bucket.itl_p95 < 1.0, bucket
        tps = bucket.tokens_per_second
        assert tps is not None and 20 <= tps <= 100 * 1.05, bucket


def test_streaming_slo_bounds_make_a_bucket_unhealthy() -> None:
    rule = HealthRule(0.99, 0.5, 0.8, max_ttft_p95=0.3, max_itl_p95=0.05,
                      min_tokens_per_second=20)  # fmt: skip
    fine = Bucket(0, 1, 10, 0, p95=0.2, correct=10, scored=10, ttft_p95=0.2, itl_p95=0.03,
                  tokens=90, token_seconds=3.0)  # fmt: skip
    assert bucket_state(fine, rule) == "healthy"
    assert bucket_state(Bucket(**{**fine.__dict__, "ttft_p95": 0.4}), rule) == "unhealthy"
    assert bucket_state(Bucket(**{**fine.__dict__, "itl_p95": 0.06}), rule) == "unhealthy"
    assert bucket_state(Bucket(**{**fine.__dict__, "token_seconds": 9.0}), rule) == "unhealthy"
    plain = Bucket(0, 1, 10, 0, p95=0.2, correct=10, scored=10)
    assert bucket_state(plain, rule) == "healthy", "an unstreamed answer is judged without"
    assert Bucket.from_record(fine.to_record()) == fine


def test_workers_streamed_partials_merge_exactly(tmp_path: Path) -> None:
    def answers(aggregator: BucketAggregator, part: range) -> None:
        for i in part:
            aggregator.add(100.0 + i / 100, 0.3, True, 1.0, None)
            aggregator.add_stream(100.0 + i / 100, "inference", 0.01 * (i % 7 + 1),
                                  [0.002 * (i % 5 + 1)] * 3, 3, 0.01 * (i % 3 + 1))  # fmt: skip

    alone = BucketAggregator(tmp_path / "alone.jsonl", 1.0, 1.0)
    answers(alone, range(60))
    master = BucketAggregator(tmp_path / "master.jsonl", 1.0, 1.0)
    for part in (range(0, 25), range(25, 60)):
        worker = BucketAggregator(None, 1.0, 1.0)
        answers(worker, part)
        master.merge(worker.drain())
    for aggregator in (alone, master):
        aggregator.flush(200.0, final=True)
        aggregator.close()
    one = (tmp_path / "alone.jsonl").read_text()
    assert one == (tmp_path / "master.jsonl").read_text()
    assert json.loads(one)["tokens"] == 180


@pytest.mark.parametrize(
    ("expect", "answer", "scored"),
    [
        ({"scorer": "exact", "value": "Paris"}, " paris\n", 1.0),
        ({"scorer": "exact", "value": "Paris", "case-sensitive": True}, "paris", 0.0),
        ({"scorer": "contains", "value": ["Paris", "Lutetia"]}, "It is Lutetia.", 1.0),
        ({"scorer": "regex", "value": r"\b4[02]\b"}, "the answer is 42", 1.0),
        ({"scorer": "json-field", "field": "v.ok", "value": True}, '{"v": {"ok": true}}', 1.0),
        ({"scorer": "numeric", "value": 3.14, "tolerance": 0.01}, "about 3.141", 1.0),
        ({"scorer": "numeric", "value": 3.14, "tolerance": 0.01}, [[3.2]], 0.0),
        ({"scorer": "choice", "value": "B"}, "The answer is (B).", 1.0),
        ({"scorer": "choice", "value": "B"}, "A, because B is wrong", 0.0),
        ({"scorer": "embedding-cosine", "value": [1, 0], "floor": 0.9}, [0.99, 0.1], 1.0),
        ({"scorer": "embedding-cosine", "value": [1, 0], "floor": 0.9}, [0.5, 0.5], 0.0),
        ({"scorer": "label", "value": "setosa"}, ["setosa"], 1.0),
        ({"scorer": "recall", "value": [1, 2, 3, 4]}, [4, 2, 9, 7], 0.5),
        ({"scorer": "no-such-scorer", "value": 1}, 1, 0.0),
    ],
)  # fmt: skip
def test_scorers(expect: dict[str, Any], answer: Any, scored: float) -> None:
    assert score(expect, answer) == scored


_ANSWERS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(scorer=st.sampled_from(sorted(SCORERS)), value=_ANSWERS, answer=_ANSWERS,
       field=st.text(max_size=8))  # fmt: skip
def test_no_answer_breaks_a_scorer(scorer: str, value: Any, answer: Any, field: str) -> None:
    """Whatever a stranger's server answers, a score in [0, 1], never an exception."""
    result = score({"scorer": scorer, "value": value, "field": field or "a"}, answer)
    assert 0.0 <= result <= 1.0


def test_a_golden_set_is_checked_against_its_schema_and_the_plans_protocol(tmp_path: Path) -> None:
    schema = json.loads((REPO / "src/aidrill/load/golden-set.schema.json").read_text())
    assert schema == golden_set_schema()
    assert set(schema["$defs"]["expect"]["properties"]["scorer"]["enum"]) == set(SCORERS)
    bad = {"samples": [{"prompt": "hi", "expect": {"scorer": "numeric", "value": "ten"}},
                       {"prompt": "hi"}]}  # fmt: skip
    problems = golden_set_problems(bad)
    assert any("samples/0/expect/value" in p and "'ten' is not of type 'number'" in p
               for p in problems), problems  # fmt: skip
    assert any(p.startswith("samples/1") for p in problems), problems
    tensors = tensor_golden_set()
    chat = ProtocolSettings(kind="openai-chat", model="m")
    assert golden_set_problems(tensors, chat)[0] == (
        "samples/0: the openai-chat protocol needs messages or prompt"
    )
    escape = ProtocolSettings(kind="http", request="{{ sample.__class__.__mro__ }}")
    assert "no http request can be built" in golden_set_problems(ticket_golden_set(), escape)[0]


def test_validate_reads_the_protocol_from_the_plan(tmp_path: Path) -> None:
    plan = yaml.safe_load((REPO / "drplan.example.yaml").read_text())
    plan["aws"]["protocol"] = {"kind": "openai-chat", "model": "llama-3-8b", "stream": True,
                               "max-tokens": 32}  # fmt: skip
    plan["slo"]["ttft_p95"] = "800ms"
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    (tmp_path / "golden.json").write_text(json.dumps(chat_golden_set()))
    (tmp_path / "tensors.json").write_text(json.dumps(tensor_golden_set()))
    runner = CliRunner()
    plan_args = ["validate", "--plan", str(tmp_path / "plan.yaml")]
    result = runner.invoke(cli, [*plan_args, str(tmp_path / "golden.json")])
    assert result.exit_code == 0, result.output
    assert "golden set, openai-chat protocol" in " ".join(result.output.split())
    result = runner.invoke(cli, [*plan_args, str(tmp_path / "tensors.json")])
    assert result.exit_code == 2 and "needs messages or prompt" in result.output
    plan["aws"]["protocol"]["kind"] = "grpc"
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    result = runner.invoke(cli, ["validate", str(tmp_path / "plan.yaml")])
    assert result.exit_code == 2
    assert f"unknown protocol 'grpc' (known: {', '.join(protocol_names())})" in " ".join(
        result.output.split()
    )


# SageMaker, through moto's server over HTTP as the AWS endpoint: botocore signs every
# request (SigV4, service sagemaker), and moto routes it by that signature to its
# sagemaker-runtime, which answers each distinct body with the next queued result.
_SPECIES = ["setosa", "versicolor", "virginica", "setosa", "virginica"]


@pytest.fixture
def sagemaker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    process, port = spawn_moto_server(tmp_path / "moto.log", "moto's server")
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "AKIASTRANGER", "AWS_SECRET_ACCESS_KEY": "s3cret",
                       "AWS_REGION": "eu-west-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    golden = {"samples": [{"input": {"instances": [[i, i / 2]]},
                           "expect": {"scorer": "exact", "value": species}}
                          for i, species in enumerate(_SPECIES)]}  # fmt: skip
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(golden))
    # The endpoint's answers in the order the bodies are first seen: the last is wrong.
    answers = [*_SPECIES[:-1], "setosa"]
    results = [{"Body": json.dumps({"predictions": [{"label": a}]}),
                "ContentType": "application/json"} for a in answers]  # fmt: skip
    request = urllib.request.Request(
        f"{endpoint}/moto-api/static/sagemaker/endpoint-results", method="POST",
        data=json.dumps({"region": "eu-west-1", "results": results}).encode(),
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=10).close()
    try:
        yield endpoint, path
    finally:
        process.kill()


def test_a_sagemaker_endpoint_is_invoked_signed_and_scored(
    sagemaker: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, golden = sagemaker
    settings = ProtocolSettings(kind="sagemaker", model="flowers-prod", region="eu-west-1",
                                answer="predictions[0].label")  # fmt: skip
    endpoints = Endpoints(endpoint, golden, "eu-west-1", "eu-central-1", protocol=settings)
    # One at a time, in order, so each body meets its queued answer.
    check = InferenceCheck(type="inference", name="all", requests=5, concurrency=1,
                           success_ratio=1.0, p95_latency=5.0, quality=0.8)  # fmt: skip
    outcome = run_inference_check(check, endpoints)
    assert (outcome.figures["success_ratio"], outcome.figures["quality"]) == (1.0, 0.8), outcome
    signed = protocol_for(settings).headers(f"{endpoint}/endpoints/flowers-prod/invocations", b"{}")
    assert "/eu-west-1/sagemaker/aws4_request" in signed["Authorization"]

    generator = LoadGenerator(endpoint, golden, tmp_path, LoadProfile(users=3, rate_per_user=5),
                              max_duration=30, protocol=settings)  # fmt: skip
    generator.start()
    try:
        time.sleep(4)
    finally:
        generator.stop()
    buckets = _timeline(tmp_path)
    assert sum(b.requests for b in buckets) >= 20 and sum(b.failures for b in buckets) == 0
    quality = sum(b.correct for b in buckets) / sum(b.scored for b in buckets)
    assert quality == pytest.approx(0.8, abs=0.15), quality

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    problems, _ = golden_set_preflight(endpoints, 0.8, 2.0)
    assert problems == [
        "no AWS credentials were found for the sagemaker protocol (boto3's chain: "
        "environment, profile, instance role)"
    ]


def test_the_lab_nodes_read_every_protocols_request_and_refuse_what_they_cannot() -> None:
    from aidrill.lab.serving._node_protocols import golden_prompt, parse_request

    prompt = golden_prompt("e-0007", [0.5, -1.0, 2.25])
    chat = parse_request("/v1/chat/completions", {"messages": [{"role": "user",
                                                                 "content": prompt}]})  # fmt: skip
    assert chat is not None and (chat.entity, chat.features) == ("e-0007", [0.5, -1.0, 2.25])
    assert parse_request("/v1/embeddings", {"input": "x"}) is None
    with pytest.raises(ValueError):
        parse_request("/v1/completions", {"prompt": "What is the capital of France?"})
    with pytest.raises(KeyError):
        parse_request("/v2/models/lab-model/infer", {"inputs": [{"name": "x", "data": [1]}]})
