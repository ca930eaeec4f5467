"""The lab's nodes speak the OpenAI-compatible API and the Open Inference Protocol
besides their own (issue 27), read by software nobody here wrote: the OpenAI API by the
official ``openai`` client, the Open Inference Protocol by KServe's own REST client (and
as KServe's v2 specification writes it); through the regions' balancers and the global
router, streamed answers token by token."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import pytest

from aidrill.lab import LabClient
from aidrill.plan import load_plan

from .conftest import PLAN

pytestmark = pytest.mark.lab
_SETTINGS = load_plan(PLAN)


def _samples(lab: LabClient, count: int = 6) -> list[dict[str, Any]]:
    return list(json.loads(lab.info.golden_set.read_text())["samples"][:count])


def _class_of(text: str) -> int:
    return int(text.rstrip(".").rsplit(" ", 1)[-1])


def _predicted(lab: LabClient, sample: dict[str, Any]) -> int:
    """What the nodes answer in their own protocol (the model is right on about nine
    golden samples in ten: every protocol must give the same class, right or wrong)."""
    body = json.dumps({"entity": sample["entity"], "features": sample["features"]}).encode()
    request = urllib.request.Request(f"{lab.info.router_url}/predict", data=body,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as answer:
        return int(json.loads(answer.read())["label"])


def test_the_official_openai_client_reads_the_labs_chat_and_completions(lab: LabClient) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{lab.info.router_url}/v1", api_key="none", timeout=5)
    for sample in _samples(lab):
        chat = client.chat.completions.create(
            model="lab-model", messages=[{"role": "user", "content": sample["prompt"]}],
            temperature=0, seed=0, max_tokens=16,
        )  # fmt: skip
        expected = _predicted(lab, sample)
        assert _class_of(chat.choices[0].message.content or "") == expected, chat
        done = client.completions.create(model="lab-model", prompt=sample["prompt"], max_tokens=16)
        assert _class_of(done.choices[0].text) == expected, done


def test_a_streamed_answer_arrives_token_by_token_through_balancer_and_router(
    lab: LabClient,
) -> None:
    """The client sees each token when the node writes it: the gaps between them are the
    node's (a quarter of its service time), not zero, as a buffering relay would show."""
    import openai

    client = openai.OpenAI(base_url=f"{lab.info.router_url}/v1", api_key="none", timeout=5)
    sample = _samples(lab, 1)[0]
    stream = client.chat.completions.create(
        model="lab-model", messages=[{"role": "user", "content": sample["prompt"]}],
        stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    arrived: list[tuple[float, str]] = []
    usage = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrived.append((time.perf_counter(), chunk.choices[0].delta.content))
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
    text = "".join(piece for _, piece in arrived)
    assert _class_of(text) == _predicted(lab, sample), text
    assert usage == len(arrived) == 4, (text, usage)
    # Three gaps of a quarter of the service time each (20 ms): at least half of that
    # arrives spread out (the first token's trip through two relays can eat into the
    # first gap); a buffered answer's tokens arrive together.
    spread = arrived[-1][0] - arrived[0][0]
    assert spread >= 0.5 * 3 * 0.25 * _SETTINGS.lab.service_time, (spread, arrived)


def test_the_open_inference_protocol_answers_as_kserve_v2_says(lab: LabClient) -> None:
    """``POST /v2/models/{model}/infer`` with the sample's tensors, JSON-encoded (the
    protocol's own encoding, as KServe's and Triton's servers take it): the output
    tensor ``label`` names the same class the node's own protocol does."""
    for sample in _samples(lab):
        body = json.dumps({"inputs": sample["inputs"]}).encode()
        request = urllib.request.Request(
            f"{lab.info.router_url}/v2/models/lab-model/infer", data=body,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as answer:
            document = json.loads(answer.read())
        (output,) = document["outputs"]
        assert (output["name"], output["datatype"], output["shape"]) == ("label", "INT64", [1])
        assert output["data"] == [_predicted(lab, sample)], document


def test_kserves_own_rest_client_reads_the_labs_open_inference_protocol(lab: LabClient) -> None:
    """KServe's ``InferenceRESTClient`` (software nobody here wrote) asks the lab through
    the global router, tensors built by KServe's own types, and reads the class back."""
    from kserve import InferenceRESTClient, RESTConfig
    from kserve.protocol.infer_type import InferInput, InferRequest

    async def ask(samples: list[dict[str, Any]]) -> list[int]:
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=5))
        try:
            answers = []
            for sample in samples:
                entity, features = sample["entity"], [float(x) for x in sample["features"]]
                inputs = [
                    InferInput("entity", [1], "BYTES", [entity]),
                    InferInput("features", [1, len(features)], "FP32", [features]),
                ]
                reply = await client.infer(
                    lab.info.router_url, InferRequest("lab-model", inputs), model_name="lab-model"
                )
                (output,) = reply.outputs
                assert (output.name, output.datatype) == ("label", "INT64")
                answers.append(int(output.data[0]))
            return answers
        finally:
            await client.close()

    samples = _samples(lab)
    assert asyncio.run(ask(samples)) == [_predicted(lab, s) for s in samples]
