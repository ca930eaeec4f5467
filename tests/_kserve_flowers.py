"""A flower classifier served by KServe's own Python model server (``kserve.ModelServer``,
software nobody here wrote): the Open Inference Protocol's REST routes, request parsing
and answer encoding are KServe's; only the model's rule is ours.

The rule is the one ``tests/_model_servers.py``'s double follows (petal length under
2.5 is setosa, anything else versicolor, so every virginica is missed): a test knows
the quality a correct reading of KServe's answers must measure.

    python -m tests._kserve_flowers PORT
"""

from __future__ import annotations

import sys
from typing import Any

from kserve import Model, ModelServer
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

MODEL = "flowers"


class Flowers(Model):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(MODEL)
        self.ready = True

    async def predict(
        self, payload: Any, headers: Any = None, response_headers: Any = None
    ) -> InferResponse:
        if not isinstance(payload, InferRequest):
            raise TypeError("this model answers the Open Inference Protocol only")
        petals = next(i for i in payload.inputs if i.name == "petals").data
        species = "setosa" if float(petals[2]) < 2.5 else "versicolor"
        outputs = [
            InferOutput("probabilities", [1, 3], "FP32", [0.9, 0.05, 0.05]),
            InferOutput("species", [1], "BYTES", [species]),
        ]
        return InferResponse(payload.id or "answer", MODEL, infer_outputs=outputs)


if __name__ == "__main__":
    server = ModelServer(http_port=int(sys.argv[1]), enable_grpc=False, workers=1)
    server.start([Flowers()])
