"""A streamed answer read as the socket delivers it (``aidrill.load._stream``): each
``data:`` line timed by the read that brought its end, through the same
geventhttpclient response Locust's FastHttpUser hands the locustfile, against a
server process that writes the stream in timed pieces."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from geventhttpclient import HTTPClient
from hypothesis import given
from hypothesis import strategies as st

from aidrill.load import _stream
from aidrill.load._stream import data_payloads
from aidrill.load.protocols import ModelProtocol, protocol_for
from aidrill.plan import ProtocolSettings
from tests._subprocess_server import free_port, served

# One connection at a time; the path picks the script: pieces written with a pause
# between them, the last one (on /cut) followed by a closed socket mid-stream.
SERVER = r"""
import socket, sys, time
PIECES = {
    "/paced": [b'data: {"a": 1}\n\n', b'data: {"b": 2}\n\ndata: {"c": 3}\n\n',
               b'data: {"d": ', b'4}\n\ndata: [DONE]\n\n'],
    "/cut": [b'data: {"a": 1}\n\n', b'data: {"b"'],
}
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    conn, _ = listener.accept()
    request = b""
    while b"\r\n\r\n" not in request and (data := conn.recv(4096)):
        request += data
    if b"\r\n\r\n" not in request:  # a readiness probe: connected, sent nothing
        conn.close()
        continue
    path = request.split(b" ")[1].decode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    for piece in PIECES[path]:
        conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        time.sleep(0.2)
    if path != "/cut":
        conn.sendall(b"0\r\n\r\n")
    conn.close()
"""


def _listening(url: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    where = tmp_path_factory.mktemp("stream-server")
    port = free_port()
    command = [sys.executable, "-c", SERVER, str(port)]
    with served(command, port, where, where / "server.log", _listening):
        yield port


@contextmanager
def _streamed(port: int, path: str) -> Iterator[SimpleNamespace]:
    """What the locustfile holds: a response whose ``_response`` is geventhttpclient's;
    its client closed after."""
    client = HTTPClient("127.0.0.1", port, connection_timeout=5, network_timeout=5)
    try:
        yield SimpleNamespace(_response=client.post(path, body=b"{}"))
    finally:
        client.close()


def test_each_line_is_timed_by_the_read_that_brought_its_end(port: int) -> None:
    with _streamed(port, "/paced") as response:
        assert _stream._is_geventhttpclient(response._response)  # the fast path, not readline
        lines, seen = data_payloads(response)

    assert lines == [b' {"a": 1}', b' {"b": 2}', b' {"c": 3}', b' {"d": 4}', b" [DONE]"]
    assert len(seen) == len(lines)
    assert seen == sorted(seen)
    assert seen[1] - seen[0] >= 0.15  # a pause between the first two writes
    assert seen[2] == seen[1]  # two events in one write arrived together
    # "d" began in the third write and ended in the fourth: it arrived with the fourth.
    assert seen[3] - seen[2] >= 0.3
    assert seen[4] == seen[3]


def test_a_stream_cut_short_raises_after_what_arrived(port: int) -> None:
    with _streamed(port, "/cut") as response, pytest.raises(Exception) as raised:
        data_payloads(response)
    assert not isinstance(raised.value, AssertionError)


def test_other_responses_are_read_from_their_content() -> None:
    class Chunked:
        _response = None

        def iter_content(self, **_: object) -> Iterator[bytes]:
            yield from [b"data: 1\r\n", b"\r\ndata: 2\n: comment\n", b"data: 3"]

    ticks = iter(range(10))
    lines, seen = data_payloads(Chunked(), clock=lambda: float(next(ticks)))

    assert lines == [b" 1\r", b" 2", b" 3"]
    assert seen == [0.0, 1.0, 3.0]  # the last line ends with the stream


def test_a_stream_with_no_data_payloads_has_none() -> None:
    class Empty:
        _response = None

        def iter_content(self, **_: object) -> Iterator[bytes]:
            yield from [b": keep-alive\n\n", b"event: ping\n"]

    assert data_payloads(Empty()) == ([], [])


# Streamed OpenAI chunks as servers write them: extra fields, a missing or null delta,
# empty choices with usage, a content of the wrong type, events after [DONE].
_text = st.one_of(st.none(), st.text(max_size=5))
_chat_choice = st.fixed_dictionaries(
    {"index": st.just(0)},
    optional={"delta": st.one_of(st.none(), st.fixed_dictionaries(
        {}, optional={"content": st.one_of(_text, st.integers(), st.lists(st.text()))},
    )), "finish_reason": st.none(), "logprobs": st.just({"content": [1]})},
)  # fmt: skip
_completion_choice = st.fixed_dictionaries(
    {"index": st.just(0)}, optional={"text": st.one_of(_text, st.integers())}
)
_usage = st.one_of(st.none(), st.fixed_dictionaries(
    {}, optional={"completion_tokens": st.one_of(st.none(), st.integers(0, 99)),
                  "prompt_tokens": st.integers(0, 9)},
))  # fmt: skip


def _chunks(choice: st.SearchStrategy[Any]) -> st.SearchStrategy[list[bytes]]:
    chunk = st.fixed_dictionaries(
        {"id": st.just("c")},
        optional={"choices": st.one_of(st.none(), st.lists(choice, max_size=2)),
                  "usage": _usage, "model": st.just("m")},
    )  # fmt: skip
    payloads = st.lists(chunk.map(lambda c: b" " + json.dumps(c).encode()), max_size=6)
    tails = st.sampled_from([[], [b" [DONE]"], [b" [DONE]", b""], [b" [DONE]", b' {"x": 1}']])
    return st.tuples(payloads, tails).map(lambda pair: pair[0] + pair[1])


def _generic(protocol: Any, payloads: list[bytes]) -> Any:
    try:
        return ModelProtocol.payload_events(protocol, list(payloads))
    except (TypeError, AttributeError, ValueError) as exc:
        return type(exc)


def _fast(protocol: Any, payloads: list[bytes]) -> Any:
    try:
        return protocol.payload_events(list(payloads))
    except (TypeError, AttributeError, ValueError) as exc:
        return type(exc)


@given(_chunks(_chat_choice), _chunks(_completion_choice))
def test_the_streamed_chunks_decoded_fast_read_as_the_generic_json_path_reads_them(
    chat: list[bytes], completions: list[bytes]
) -> None:
    for kind, payloads in (("openai-chat", chat), ("openai-completions", completions)):
        protocol = protocol_for(ProtocolSettings(kind=kind, model="m", stream=True))
        assert _fast(protocol, payloads) == _generic(protocol, payloads), payloads
