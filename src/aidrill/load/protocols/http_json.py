"""Any JSON API over HTTP: the request body from a Jinja2 template (sandboxed: a
template cannot reach Python's internals) over the golden sample, the answer read from
the JSON response with a JMESPath expression. Without a template the sample's
``input`` is the body.

    protocol:
      kind: http
      path: /api/v1/score
      request: '{"text": {{ sample.input | tojson }}, "lang": "en"}'
      answer: result.label
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jmespath
import orjson
from jinja2.sandbox import SandboxedEnvironment

from aidrill.load.protocols._base import ModelProtocol, dumps

_TEMPLATES = SandboxedEnvironment(autoescape=False)


class TemplatedHttp(ModelProtocol):
    names = ("http",)

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._template = _TEMPLATES.from_string(settings.request) if settings.request else None
        self._answer = jmespath.compile(settings.answer or "@")

    def needs(self) -> tuple[str, ...]:
        return () if self._template is not None else ("input",)

    def body(self, sample: Mapping[str, Any]) -> bytes:
        """The template over the sample; without one, the sample's ``input`` as JSON
        (never the whole sample: its expected answer stays here)."""
        if self._template is None:
            return dumps(sample["input"])
        return self._template.render(sample=sample).encode()

    def read(self, body: bytes) -> Any:
        """The answer in a JSON reply; a reply that is no JSON is its text."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode(errors="replace").strip()
        return self.answer(document)

    def answer(self, document: Any) -> Any:
        return self._answer.search(document)


PROTOCOLS = (TemplatedHttp,)
