"""What a streamed answer's ``data:`` lines carry and when each arrived, read as the socket
delivers them.

Each line's arrival is the time of the socket read that brought its end: lines that
came in one packet arrived together, and are timed once. Reading per socket read
instead of per line keeps the load's cost per streamed answer close to a bare loop's
(``benchmarks/stream_load.py``): a 64-token answer written at once costs two reads, not
66 ``readline`` calls and 66 clock reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aidrill.load.protocols._base import Unframer

_DATA = b"data:"


class StreamCutShort(ConnectionError):
    """The connection closed before the stream's end."""


def data_payloads(
    response: Any, clock: Callable[[], float] = time.time, unframer: Unframer | None = None
) -> tuple[list[bytes], list[float]]:
    """What follows ``data:`` on each of the stream's ``data:`` lines, in order, and,
    for each, ``clock()`` when its line's end arrived. A last line without a newline
    counts as ended when the stream ends. An ``unframer`` first turns a framed body
    (SageMaker's event stream) into those lines, as its frames complete."""
    payloads: list[bytes] = []
    seen: list[float] = []
    tail = b""
    for chunk in _reads(response):
        at = clock()
        if unframer is not None:
            chunk = unframer.feed(chunk)
        complete, newline, tail = (tail + chunk).rpartition(b"\n")
        if newline:
            found = [line[5:] for line in complete.split(b"\n") if line.startswith(_DATA)]
            payloads += found
            seen += [at] * len(found)
    if unframer is not None:
        at = clock()
        for line in (tail + unframer.end()).split(b"\n"):
            if line.startswith(_DATA):
                payloads.append(line[5:])
                seen.append(at)
        return payloads, seen
    if tail.startswith(_DATA):
        payloads.append(tail[5:])
        seen.append(clock())
    return payloads, seen


def _reads(response: Any) -> Iterator[bytes]:
    """The body's bytes, each piece as soon as a socket read brings it.

    Locust's FastResponse reads through geventhttpclient, whose public ``read(n)`` waits
    for n bytes (it would hand over a short answer's tokens all at once) and whose
    ``readline`` costs a call per line: its parsed-body buffer is taken whole after each
    socket read instead. Any other response is read line by line."""
    raw: Any = getattr(response, "_response", None)
    if not _is_geventhttpclient(raw):
        yield from _lines(response, raw)
        return
    try:
        while True:
            buffered = raw._body_buffer
            if buffered:
                piece = bytes(buffered)
                del buffered[:]
                yield piece
            elif raw.message_complete:
                return
            else:
                sock = raw._sock
                if sock is None:
                    raise StreamCutShort("the connection closed before the stream's end")
                received = sock.recv(raw.block_size)
                raw.feed(received)
                if not received and not raw.message_complete:
                    raise StreamCutShort("the connection closed before the stream's end")
    except BaseException:
        raw.release()
        raise


def _is_geventhttpclient(raw: Any) -> bool:
    return (
        isinstance(getattr(raw, "_body_buffer", None), bytearray)
        and hasattr(raw, "_sock")
        and hasattr(raw, "feed")
        and hasattr(raw, "block_size")
        and hasattr(raw, "message_complete")
        and hasattr(raw, "release")
    )


def _lines(response: Any, raw: Any) -> Iterator[bytes]:
    if raw is not None and hasattr(raw, "readline"):
        readline = raw.readline
        while line := readline(b"\n"):
            yield line
        return
    yield from response.iter_content(chunk_size=64 * 1024, decode_content=False)
