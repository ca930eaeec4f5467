"""What every protocol of the load gives: how to ask a model server for one golden
sample, and how to read its answer (whole, or streamed as server-sent events).

A protocol never scores: it reads the answer (a label, a text, a vector, a tensor's
values) and ``aidrill.load.scorers`` judges it against the sample.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

if TYPE_CHECKING:
    from aidrill.plan import ProtocolSettings

_DONE = b"[DONE]"


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

    def read(self, body: bytes) -> Any:
        """The answer in a whole response body (for a streamed one: every event's
        piece joined)."""
        if self.streams:
            return "".join(piece for piece, _ in self.events(body.splitlines()))
        return self.answer(orjson.loads(body))

    def answer(self, document: Any) -> Any:
        raise NotImplementedError

    def events(self, lines: Any) -> Iterator[tuple[str, int]]:
        """(text piece, output tokens it carried) per server-sent event of a stream; a
        usage-only event gives ("", completion tokens)."""
        for raw in lines:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == _DONE:
                return
            yield self.piece(orjson.loads(data))

    def piece(self, event: Any) -> tuple[str, int]:
        raise NotImplementedError


def dumps(document: Any) -> bytes:
    return orjson.dumps(document)
