"""SageMaker real-time endpoints: ``InvokeEndpoint`` (``POST
/endpoints/{model}/invocations`` on ``runtime.sagemaker.<region>.amazonaws.com``),
signed with SigV4 by botocore from the default credential chain, per request.

The plan's ``inference`` is the runtime's base URL (an ``AWS_ENDPOINT_URL``-style
endpoint such as moto's server works the same); ``protocol.model`` is the endpoint's
name and ``protocol.region`` (else ``AWS_REGION``) the region signed for. The body is
built and the answer read as for ``http`` (a Jinja2 template, a JMESPath expression).

With ``stream: true`` it calls ``InvokeEndpointWithResponseStream`` (``POST
/endpoints/{model}/invocations-response-stream``): the answer comes as AWS event-stream
messages (read by botocore's parser, checksums checked), each ``PayloadPart`` carrying
bytes the model container wrote. Those bytes are lines, split across parts anyhow:
server-sent events (``data: {...}``, as TGI and LMI containers write them) or JSON
lines. ``protocol.answer`` is then a JMESPath expression over each line's JSON (default:
TGI's ``token.text``, else an OpenAI-style delta or text); a line that is no JSON is its
own text. The pieces are joined into the answer and timed as tokens. An error event
(``ModelStreamError``, ``InternalStreamFailure``) fails the answer.
"""

from __future__ import annotations

import os
from typing import Any

import jmespath
import orjson

from aidrill.load.protocols._base import _DONE, ModelProtocol, StreamFailed
from aidrill.load.protocols.http_json import TemplatedHttp

# One streamed line's text, in the shapes SageMaker's LLM containers write: TGI's and
# LMI's token events, an OpenAI-style chunk (vLLM behind LMI), a completion's text.
_STREAM_PIECE = "token.text || choices[0].delta.content || choices[0].text"
_SSE_FIELDS = (b"event:", b"id:", b"retry:", b":")


class NoCredentialsError(ValueError):
    pass


class SageMakerRuntime(TemplatedHttp):
    names = ("sagemaker",)
    default_path = "/endpoints/{model}/invocations"

    streamable = True
    stream_path = "/endpoints/{model}/invocations-response-stream"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        if self.streams:
            if not settings.path:
                self.path = self.stream_path.format(model=settings.model or "")
            self._answer = jmespath.compile(settings.answer or _STREAM_PIECE)
        self.region = (
            settings.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        self._credentials: Any = None

    def headers(self, url: str, body: bytes) -> dict[str, str]:
        """SigV4 headers for one request (botocore's signer, service ``sagemaker``)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._credentials is None:
            import botocore.session

            self._credentials = botocore.session.get_session().get_credentials()
            if self._credentials is None:
                raise NoCredentialsError(
                    "no AWS credentials were found for the sagemaker protocol (boto3's "
                    "chain: environment, profile, instance role)"
                )
        request = AWSRequest("POST", url, data=body, headers={"Content-Type": self.content_type})
        SigV4Auth(self._credentials.get_frozen_credentials(), "sagemaker", self.region).add_auth(
            request
        )
        return {k: str(v) for k, v in request.headers.items() if k != "Content-Type"}

    def unframer(self) -> EventStreamLines | None:
        return EventStreamLines() if self.streams else None

    def read(self, body: bytes) -> Any:
        if self.streams:
            return ModelProtocol.read(self, body)  # the stream's pieces joined
        return super().read(body)

    def payload_events(self, payloads: list[bytes]) -> list[tuple[str, int]]:
        """One (text, 0) per streamed line, up to ``[DONE]``; a line that is no JSON is
        its own text."""
        events: list[tuple[str, int]] = []
        for payload in payloads:
            if payload.strip() == _DONE:
                break
            try:
                document = orjson.loads(payload)
            except orjson.JSONDecodeError:
                events.append((payload.decode(errors="replace").strip(), 0))
                continue
            events.append(self.piece(document))
        return events

    def piece(self, event: Any) -> tuple[str, int]:
        text = self._answer.search(event)
        if text is None:
            return "", 0
        return (text if isinstance(text, str) else orjson.dumps(text).decode()), 0


class EventStreamLines:
    """Reads one ``InvokeEndpointWithResponseStream`` body as its bytes arrive: the
    event-stream messages they complete (botocore's parser), the ``PayloadPart`` bytes
    joined, handed on as the ``data:`` lines they complete (a JSON line gets the
    prefix; a server-sent event's other fields and blank lines are dropped)."""

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._messages = EventStreamBuffer()
        self._received = 0
        self._framed = 0  # bytes of complete messages
        self._text = b""  # payload bytes after the last complete line

    def feed(self, chunk: bytes) -> bytes:
        from botocore.eventstream import ParserError

        self._received += len(chunk)
        self._messages.add_data(chunk)
        parts: list[bytes] = []
        try:
            for message in self._messages:
                self._framed += message.prelude.total_length
                parts.append(_payload_part(message))
        except ParserError as exc:
            raise StreamFailed(f"the endpoint's event stream is garbled: {exc}") from exc
        complete, newline, self._text = (self._text + b"".join(parts)).rpartition(b"\n")
        return _data_lines(complete) if newline else b""

    def end(self) -> bytes:
        if self._framed != self._received:
            raise StreamFailed(
                f"the event stream ended mid-message ({self._received - self._framed} "
                "bytes of an unfinished message)"
            )
        text, self._text = self._text, b""
        return _data_lines(text)


def _payload_part(message: Any) -> bytes:
    headers = message.headers
    if headers.get(":message-type") in ("exception", "error"):
        kind = headers.get(":exception-type") or headers.get(":error-code") or "error"
        detail = message.payload.decode(errors="replace")[:300]
        raise StreamFailed(f"the endpoint's stream failed: {kind}: {detail}")
    return bytes(message.payload) if headers.get(":event-type") == "PayloadPart" else b""


def _data_lines(text: bytes) -> bytes:
    lines = []
    for line in text.split(b"\n"):
        line = line.strip()
        if line.startswith(b"data:"):
            lines.append(line)
        elif line and not line.startswith(_SSE_FIELDS):
            lines.append(b"data:" + line)
    return b"".join(line + b"\n" for line in lines)


PROTOCOLS = (SageMakerRuntime,)
