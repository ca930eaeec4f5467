"""Test doubles of model servers shaped unlike the lab: an OpenAI-compatible LLM server
(chat and completions, streamed as server-sent events over chunked HTTP/1.1, as vLLM's
uvicorn sends them), an Open Inference Protocol server (KServe v2 / Triton's HTTP
API), a team's own JSON API, and a SageMaker endpoint's response stream (a TGI
container's events in AWS event-stream messages, as ``InvokeEndpointWithResponseStream``
answers; moto's server does not speak it). None sends an aidrill header.

Each knows the answers to some questions and gets others wrong on purpose, so a test
knows the quality a correct scorer must measure. Streams send a token every
``token_gap`` seconds after a first-token delay ``ttft``: what the load measures.
"""

from __future__ import annotations

import binascii
import json
import re
import struct
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CAPITALS = {
    "France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi", "Peru": "Lima",
    "Canada": "Ottawa", "Egypt": "Cairo", "Norway": "Oslo", "Chile": "Santiago",
    "Spain": "Madrid", "India": "New Delhi",
}  # fmt: skip
# The LLM double answers these wrong: 2 of 10, so quality 0.8.
WRONG = {"Chile": "Valparaiso", "India": "Mumbai"}


def chat_golden_set() -> dict[str, Any]:
    return {
        "samples": [
            {"id": country.lower(), "prompt": f"What is the capital of {country}?",
             "expect": {"scorer": "contains", "value": capital}}
            for country, capital in CAPITALS.items()
        ]
    }  # fmt: skip


# Iris-like flowers: petal length < 2.5 is setosa, else the double says versicolor, so
# it misses every virginica: 4 of 10 here, quality 0.6.
FLOWERS = [([5.1, 3.5, 1.4, 0.2], "setosa"), ([4.9, 3.0, 1.4, 0.2], "setosa"),
           ([4.7, 3.2, 1.3, 0.2], "setosa"), ([7.0, 3.2, 4.7, 1.4], "versicolor"),
           ([6.4, 3.2, 4.5, 1.5], "versicolor"), ([6.9, 3.1, 4.9, 1.5], "versicolor"),
           ([6.3, 3.3, 6.0, 2.5], "virginica"), ([5.8, 2.7, 5.1, 1.9], "virginica"),
           ([7.1, 3.0, 5.9, 2.1], "virginica"), ([6.5, 3.0, 5.8, 2.2], "virginica")]  # fmt: skip


def tensor_golden_set() -> dict[str, Any]:
    return {
        "samples": [
            {"inputs": [{"name": "petals", "datatype": "FP32", "shape": [1, 4],
                         "data": features}],
             "expect": {"scorer": "label", "value": species}}
            for features, species in FLOWERS
        ]
    }  # fmt: skip


# The team's own API: tickets classified; it files every "refund" under billing, so
# the one refund question about shipping is wrong: 3 of 4.
TICKETS = [
    ("my card was charged twice", "billing"),
    ("the parcel never came", "shipping"),
    ("refund for a lost parcel", "shipping"),
    ("invoice address wrong", "billing"),
]


def ticket_golden_set() -> dict[str, Any]:
    return {
        "samples": [{"input": text, "expect": {"scorer": "exact", "value": category}}
                    for text, category in TICKETS]
    }  # fmt: skip


def _classify(text: str) -> str:
    return "billing" if any(w in text for w in ("card", "invoice", "refund")) else "shipping"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *_: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._json(400, {"error": "bad json"})
            return
        if self.path in ("/admin/down", "/admin/up"):  # the team's own fault switch
            self.server.down = self.path == "/admin/down"
            self.server.switched.append((time.time(), self.server.down))
            self._json(200, {"down": self.server.down})
            return
        self.server.requests.append((self.path, body))
        if self.server.down:
            self._json(503, {"error": "engine dead"})
        elif self.path == "/v1/chat/completions":
            self._chat(body, chat=True)
        elif self.path == "/v1/completions":
            self._chat(body, chat=False)
        elif self.path == "/v2/models/flowers/infer":
            self._infer(body)
        elif _SAGEMAKER_STREAM.fullmatch(self.path):
            self._sagemaker_stream(body)
        elif self.path == "/api/v3/classify":
            text = body.get("document", {}).get("text", "")
            self._json(200, {"result": {"category": _classify(text), "confidence": 0.9}})
        else:
            self._json(404, {"error": f"no route {self.path}"})

    def do_GET(self) -> None:
        if self.path == "/health":
            healthy = not self.server.down or self.server.lying_health
            self._json(200 if healthy else 503, {"ok": healthy})
        else:
            self._json(404, {"error": f"no route {self.path}"})

    def _json(self, status: int, document: Any) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Served-By", self.server.replica)
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, body: dict[str, Any], chat: bool) -> str:
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        country = prompt.rsplit(" ", 1)[-1].rstrip("?")
        capital = WRONG.get(country) or CAPITALS.get(country, "I do not know")
        return f"The capital of {country} is {capital}."

    def _chat(self, body: dict[str, Any], chat: bool) -> None:
        text = self._answer(body, chat)
        words = [w + " " for w in text.split(" ")]
        if not body.get("stream"):
            choice = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
            self._json(200, {"id": "x", "object": "chat.completion", "choices": [choice],
                             "usage": {"completion_tokens": len(words)}})  # fmt: skip
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Served-By", self.server.replica)
        self.end_headers()
        time.sleep(self.server.ttft)
        for index, word in enumerate(words):
            if index:
                time.sleep(self.server.token_gap)
            delta = {"delta": {"content": word}} if chat else {"text": word}
            self._event({"id": "x", "choices": [{"index": 0, **delta}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({"id": "x", "choices": [], "usage": {"completion_tokens": len(words)}})
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _event(self, document: Any) -> None:
        self._chunk(b"data: " + json.dumps(document).encode() + b"\n\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _sagemaker_stream(self, body: dict[str, Any]) -> None:
        """A TGI container's server-sent events, each line split across two
        ``PayloadPart`` messages (as SageMaker may split them); a ``ModelStreamError``
        after ``stream_error_after`` tokens where set. Unsigned requests are refused."""
        if "/sagemaker/aws4_request" not in self.headers.get("Authorization", ""):
            self._json(403, {"message": "Missing Authentication Token"})
            return
        text = self._answer({"prompt": body["inputs"]}, chat=False)
        words = [w + " " for w in text.split(" ")]
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("X-Amzn-SageMaker-Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        time.sleep(self.server.ttft)
        for index, word in enumerate(words):
            if index:
                time.sleep(self.server.token_gap)
            if index == self.server.stream_error_after:
                self._chunk(event_message(
                    {":message-type": "exception", ":exception-type": "ModelStreamError",
                     ":content-type": "application/json"},
                    b'{"Message": "CUDA out of memory", "ErrorCode": "ModelError"}',
                ))  # fmt: skip
                self._chunk(b"")
                return
            event = {"token": {"id": index, "text": word, "special": False}}
            if index == len(words) - 1:
                event["generated_text"] = text
            line = b"data:" + json.dumps(event).encode() + b"\n\n"
            for part in (line[:7], line[7:]):
                self._chunk(event_message(_PAYLOAD_PART, part))
        self._chunk(b"")

    def _infer(self, body: dict[str, Any]) -> None:
        tensor = next(t for t in body["inputs"] if t["name"] == "petals")
        species = "setosa" if tensor["data"][2] < 2.5 else "versicolor"
        self._json(200, {"model_name": "flowers", "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [1, 3],
             "data": [0.9, 0.05, 0.05]},
            {"name": "species", "datatype": "BYTES", "shape": [1], "data": [species]},
        ]})  # fmt: skip


_SAGEMAKER_STREAM = re.compile(r"/endpoints/[^/]+/invocations-response-stream")
_PAYLOAD_PART = {":message-type": "event", ":event-type": "PayloadPart",
                 ":content-type": "application/octet-stream"}  # fmt: skip


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total and headers length, their CRC32),
    string headers, the payload, the message's CRC32."""
    encoded = b"".join(
        struct.pack(">B", len(name)) + name.encode() + b"\x07"
        + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers.items()
    )  # fmt: skip
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ttft = 0.05
    token_gap = 0.01
    stream_error_after: int | None = None  # SageMaker's stream breaks after this token
    down = False
    lying_health = False  # /health answers 200 while down, as vLLM's does with a dead engine
    replica = "replica-1"  # named in a gateway's header on every answer (not aidrill's own)

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, Any]] = []
        self.switched: list[tuple[float, bool]] = []  # (when, down) per admin call

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-stream (the load stopping) is no error here;
        anything else is."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def model_server() -> Iterator[_Server]:
    """One server speaking every protocol above, on a free loopback port; stopped after."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
