"""What a lab GPU node understands besides its own ``POST /predict``: the
OpenAI-compatible API (``/v1/chat/completions`` and ``/v1/completions``, streamed as
server-sent events or answered whole) and the Open Inference Protocol
(``/v2/models/{model}/infer``), over the same model.

The node's "language model" is deterministic and tiny: the golden prompt names the
entity and its request features, and the answer is the predicted class as a short
sentence, one word per token. The first token leaves after the node's service time
(the GPU lock), the others one inter-token gap apart (a quarter of the service time, a
fault's slow-down included), so time to first token and inter-token latency move with
load and faults as a model server's do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

PROMPT = "Classify entity {entity} with features [{features}]. Answer with the class number."
_PROMPT = re.compile(r"entity (\S+) with features \[([^\]]*)\]")
_INFER = re.compile(r"^/v2/models/([^/]+)/infer$")
CHAT_PATH, COMPLETIONS_PATH = "/v1/chat/completions", "/v1/completions"
TOKEN_GAP_SHARE = 0.25  # inter-token gap, as a share of the node's service time


def golden_prompt(entity: str, features: list[float]) -> str:
    return PROMPT.format(entity=entity, features=", ".join(str(x) for x in features))


def golden_inputs(entity: str, features: list[float]) -> list[dict[str, Any]]:
    """The Open Inference Protocol tensors of one golden request."""
    return [
        {"name": "entity", "datatype": "BYTES", "shape": [1], "data": [entity]},
        {"name": "features", "datatype": "FP32", "shape": [1, len(features)], "data": features},
    ]


@dataclass(frozen=True)
class NodeRequest:
    """One inference request, whatever protocol it came in."""

    kind: str  # "predict", "chat", "completions" or "infer"
    entity: str
    features: list[float]
    stream: bool = False
    model: str = "lab-model"


def parse_request(path: str, body: dict[str, Any]) -> NodeRequest | None:
    """The request a path and JSON body make, None for a path the node does not serve;
    ValueError (KeyError, TypeError) for a body it cannot read."""
    if path == "/predict":
        return NodeRequest("predict", str(body["entity"]), [float(x) for x in body["features"]])
    if path in (CHAT_PATH, COMPLETIONS_PATH):
        chat = path == CHAT_PATH
        text = str(body["messages"][-1]["content"] if chat else body["prompt"])
        found = _PROMPT.search(text)
        if found is None:
            raise ValueError("the prompt names no entity and features")
        features = [float(x) for x in found.group(2).replace(",", " ").split()]
        kind, model = ("chat" if chat else "completions"), str(body.get("model") or "lab-model")
        return NodeRequest(kind, found.group(1), features, bool(body.get("stream")), model)
    matched = _INFER.match(path)
    if matched is not None:
        tensors = {t["name"]: t["data"] for t in body["inputs"]}
        features = [float(x) for x in _flat(tensors["features"])]
        return NodeRequest("infer", str(_flat(tensors["entity"])[0]), features,
                           model=matched.group(1))  # fmt: skip
    return None


def _flat(data: Any) -> list[Any]:
    return [x for row in data for x in _flat(row)] if isinstance(data, list) else [data]


def answer_words(label: int) -> list[str]:
    return ["The", " class", " is", f" {label}."]


def whole_reply(request: NodeRequest, label: int, node: str) -> dict[str, Any]:
    """The answer in the request's protocol, all at once."""
    if request.kind == "predict":
        raise ValueError("/predict answers are written by the node itself")
    if request.kind == "infer":
        return {"model_name": request.model, "id": node, "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [1], "data": [label]}]}  # fmt: skip
    text = "".join(answer_words(label))
    choice = (
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if request.kind == "chat"
        else {"index": 0, "text": text, "finish_reason": "stop"}
    )
    usage = {"completion_tokens": len(answer_words(label))}
    return {"id": f"{node}-answer", "object": _OBJECT[request.kind], "model": request.model,
            "choices": [choice], "usage": usage}  # fmt: skip


_OBJECT = {"chat": "chat.completion", "completions": "text_completion"}


def stream_event(request: NodeRequest, word: str, node: str) -> bytes:
    """One server-sent event carrying one token."""
    choice = (
        {"index": 0, "delta": {"content": word}}
        if request.kind == "chat"
        else {"index": 0, "text": word}
    )
    document = {"id": f"{node}-answer", "object": f"{_OBJECT[request.kind]}.chunk",
                "model": request.model, "choices": [choice]}  # fmt: skip
    return b"data: " + json.dumps(document).encode() + b"\n\n"


def stream_end(request: NodeRequest, tokens: int, node: str) -> bytes:
    """The usage event (the client asked for it or not: it is harmless) and [DONE]."""
    usage = {"id": f"{node}-answer", "object": f"{_OBJECT[request.kind]}.chunk",
             "model": request.model, "choices": [],
             "usage": {"completion_tokens": tokens}}  # fmt: skip
    return b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"
