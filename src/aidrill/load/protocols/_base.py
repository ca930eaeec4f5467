"""What every protocol of the load gives: how to ask a model server for one golden
sample, and how to read its answer (whole, or streamed as server-sent events).

A protocol never scores: it reads the answer (a label, a text, a vector, a tensor's
values) and ``aidrill.load.scorers`` judges it against the sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import orjson

if TYPE_CHECKING:
    from aidrill.plan import ProtocolSettings

_DONE = b"[DONE]"


class StreamFailed(ValueError):
    """A streamed answer the server broke off with an error of its own, or whose framing
    does not hold: a failed answer, not a wrong one."""


class Unframer(Protocol):
    """Turns a stream's raw bytes, as they arrive, into the ``data:`` lines they complete
    (for a server whose stream is not server-sent events as such)."""

    def feed(self, chunk: bytes) -> bytes: ...

    def end(self) -> bytes:
        """The lines left once the stream ended; raises StreamFailed if it ended
        mid-frame."""
        ...


class ModelProtocol:
    """One way of asking a model server. ``default_path``: where requests go unless the
    plan's ``protocol.path`` says otherwise."""

    names: ClassVar[tuple[str, ...]] = ()
    default_path: ClassVar[str] = "/"
    streamable: ClassVar[bool] = False

    def __init__(self, settings: ProtocolSettings) -> None:
        self.settings = settings
        self.streams = bool(settings.stream) and self.streamable
        self.path = settings.path or self.default_path.format(model=settings.model or "")
        self.content_type = settings.content_type

    def needs(self) -> tuple[str, ...]:
        """The golden-sample fields every request needs (one of each tuple entry)."""
        return ()

    def body(self, sample: Mapping[str, Any]) -> bytes:
        raise NotImplementedError

    def headers(self, url: str, body: bytes) -> dict[str, str]:
        """Headers one request needs beyond the plan's (a signature); none by default."""
        return {}

    @property
    def signs(self) -> bool:
        """Whether each request carries headers of its own (``headers``)."""
        return type(self).headers is not ModelProtocol.headers

    def unframer(self) -> Unframer | None:
        """A fresh reader of one stream's framing; None where the body is server-sent
        events as they come (the OpenAI API's)."""
        return None

    def read(self, body: bytes) -> Any:
        """The answer in a whole response body (for a streamed one: every event's
        piece joined)."""
        if self.streams:
            unframer = self.unframer()
            if unframer is not None:
                body = unframer.feed(body) + unframer.end()
            return "".join(piece for piece, _ in self.events(body.splitlines()))
        return self.answer(orjson.loads(body))

    def answer(self, document: Any) -> Any:
        raise NotImplementedError

    def events(self, lines: Any) -> list[tuple[str, int]]:
        """(text piece, output tokens it carried) per ``data:`` line of a stream, in
        order, up to ``[DONE]``; a usage-only event gives ("", completion tokens). The
        events are parsed as one JSON array: one parse per answer, not per token (runs
        once per streamed answer in the load: ``benchmarks/stream_load.py``)."""
        return self.payload_events([line[5:] for line in lines if line.startswith(b"data:")])

    def payload_events(self, payloads: list[bytes]) -> list[tuple[str, int]]:
        """``events`` of the ``data:`` lines' payloads (what follows ``data:``)."""
        if not drop_done(payloads):
            return []
        try:
            documents = orjson.loads(b"[" + b",".join(payloads) + b"]")
        except orjson.JSONDecodeError:  # an event after [DONE], or one that is no JSON
            documents = []
            for payload in payloads:
                if payload.strip() == _DONE:
                    break
                documents.append(orjson.loads(payload))
        return self.pieces(documents)

    def pieces(self, events: list[Any]) -> list[tuple[str, int]]:
        return [self.piece(event) for event in events]

    def piece(self, event: Any) -> tuple[str, int]:
        raise NotImplementedError


def drop_done(payloads: list[bytes]) -> list[bytes]:
    """``payloads`` without the ``[DONE]`` and blank payloads that end a stream (in
    place, and returned)."""
    while payloads and payloads[-1].strip() in (_DONE, b""):
        payloads.pop()
    return payloads


def dumps(document: Any) -> bytes:
    return orjson.dumps(document)
