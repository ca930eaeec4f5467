"""The Open Inference Protocol (KServe's v2, Triton's and MLServer's HTTP API):
``POST /v2/models/{model}/infer`` with typed tensors.

A golden sample's ``inputs`` are the request's tensors as the protocol writes them
(``name``, ``datatype``, ``shape``, ``data``); the answer is the output tensor the plan
names (``protocol.output``; else the first), read by name, as its list of values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aidrill.load.protocols._base import ModelProtocol, dumps


class OpenInference(ModelProtocol):
    names = ("open-inference",)
    default_path = "/v2/models/{model}/infer"

    def needs(self) -> tuple[str, ...]:
        return ("inputs",)

    def body(self, sample: Mapping[str, Any]) -> bytes:
        request: dict[str, Any] = {"inputs": sample["inputs"]}
        if self.settings.output:
            request["outputs"] = [{"name": self.settings.output}]
        return dumps(request)

    def answer(self, document: Any) -> Any:
        outputs = document["outputs"]
        wanted = self.settings.output
        if not wanted:
            return outputs[0]["data"]
        chosen = next((o for o in outputs if o.get("name") == wanted), None)
        return None if chosen is None else chosen["data"]


PROTOCOLS = (OpenInference,)
