"""The OpenAI-compatible API most LLM servers and gateways speak (vLLM, TGI, SGLang,
LiteLLM, Ollama): chat completions, completions and embeddings, streamed as
server-sent events where the plan asks for it.

Requests are deterministic where the server allows: temperature 0 and a fixed seed from
the plan, the model and max tokens too; a golden sample may set its own ``max_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from aidrill.load.protocols._base import ModelProtocol, drop_done, dumps

_EMPTY: Mapping[str, Any] = {}  # a missing delta, read as one with no content


# A streamed chunk as far as the load reads it: msgspec decodes these fields and skips
# every other without building it (about 40 % of the per-answer parse, once per
# streamed answer: benchmarks/stream_load.py). Anything shaped otherwise (a content
# that is not a string, say) is read by the generic path instead.
class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    text: str | None = None


class _Usage(msgspec.Struct):
    completion_tokens: int | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] | None = None
    usage: _Usage | None = None


_CHUNKS = msgspec.json.Decoder(list[_Chunk])


class _Generation(ModelProtocol):
    streamable = True

    def _common(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        settings = self.settings
        body: dict[str, Any] = {
            "model": settings.model,
            "max_tokens": int(sample.get("max_tokens") or settings.max_tokens),
            "temperature": settings.temperature,
        }
        if settings.seed is not None:
            body["seed"] = settings.seed
        if self.streams:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def payload_events(self, payloads: list[bytes]) -> list[tuple[str, int]]:
        """Every chunk's text piece, or ("", completion tokens) for a usage-only one,
        decoded as one array into the few fields read; a stream shaped otherwise goes
        through the generic path (``ModelProtocol.payload_events``)."""
        if not drop_done(payloads):
            return []
        try:
            chunks = _CHUNKS.decode(b"[" + b",".join(payloads) + b"]")
        except msgspec.DecodeError:  # also a field of another type
            return super().payload_events(payloads)
        return [
            (self._text(choices[0]) or "", 0)
            if (choices := chunk.choices)
            else ("", (chunk.usage.completion_tokens or 0) if chunk.usage else 0)
            for chunk in chunks
        ]

    @staticmethod
    def _text(choice: _Choice) -> str | None:
        raise NotImplementedError


class OpenAIChat(_Generation):
    names = ("openai-chat",)
    default_path = "/v1/chat/completions"

    def needs(self) -> tuple[str, ...]:
        return ("messages|prompt",)

    def body(self, sample: Mapping[str, Any]) -> bytes:
        messages = sample.get("messages") or [{"role": "user", "content": sample["prompt"]}]
        return dumps({**self._common(sample), "messages": messages})

    def answer(self, document: Any) -> Any:
        return document["choices"][0]["message"]["content"]

    @staticmethod
    def _text(choice: _Choice) -> str | None:
        return choice.delta.content if choice.delta is not None else None

    def piece(self, event: Any) -> tuple[str, int]:
        choices = event.get("choices") or []
        if not choices:
            usage = event.get("usage") or {}
            return "", int(usage.get("completion_tokens") or 0)
        return (choices[0].get("delta") or {}).get("content") or "", 0

    def pieces(self, events: list[Any]) -> list[tuple[str, int]]:
        # piece() inlined for the text events: once per token of every streamed answer.
        return [
            ((choices[0].get("delta") or _EMPTY).get("content") or "", 0)
            if (choices := event.get("choices"))
            else self.piece(event)
            for event in events
        ]


class OpenAICompletions(_Generation):
    names = ("openai-completions",)
    default_path = "/v1/completions"

    def needs(self) -> tuple[str, ...]:
        return ("prompt",)

    def body(self, sample: Mapping[str, Any]) -> bytes:
        return dumps({**self._common(sample), "prompt": sample["prompt"]})

    def answer(self, document: Any) -> Any:
        return document["choices"][0]["text"]

    @staticmethod
    def _text(choice: _Choice) -> str | None:
        return choice.text

    def piece(self, event: Any) -> tuple[str, int]:
        choices = event.get("choices") or []
        if not choices:
            usage = event.get("usage") or {}
            return "", int(usage.get("completion_tokens") or 0)
        return choices[0].get("text") or "", 0


class OpenAIEmbeddings(ModelProtocol):
    names = ("openai-embeddings",)
    default_path = "/v1/embeddings"

    def needs(self) -> tuple[str, ...]:
        return ("input|prompt",)

    def body(self, sample: Mapping[str, Any]) -> bytes:
        text = sample.get("input", sample.get("prompt"))
        return dumps({"model": self.settings.model, "input": text})

    def answer(self, document: Any) -> Any:
        return document["data"][0]["embedding"]


PROTOCOLS = (OpenAIChat, OpenAICompletions, OpenAIEmbeddings)
