"""The embedded lab's own protocol: ``POST /predict`` with ``{"entity", "features"}``,
answered with ``{"label": ...}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aidrill.load.protocols._base import ModelProtocol, dumps


class AidrillPredict(ModelProtocol):
    names = ("aidrill",)
    default_path = "/predict"

    def needs(self) -> tuple[str, ...]:
        return ("entity", "features")

    def body(self, sample: Mapping[str, Any]) -> bytes:
        return dumps({"entity": sample["entity"], "features": sample["features"]})

    def answer(self, document: Any) -> Any:
        return document["label"]


PROTOCOLS = (AidrillPredict,)
