"""Faults a GPU node's health check does not see, injected into the node's own process.

A node in one of these modes keeps answering its health check 200 with the production
model version, as the servers behind the blind faults do (an engine dead behind a live
HTTP front, a model that loads wrong, a replacement stuck loading, a GPU throwing XID
errors, a slow leak):

- ``lying-health``: every inference fails at once (500, the engine is dead);
- ``wrong-model``: answers come from a mislabelled model (fast, 200, wrong);
- ``stuck-loading``: the node's model server came back from a restart reporting ready
  with its model still loading: inference hangs until the caller gives up, then 503;
- ``gpu-degradation``: the service time multiplies by ``factor`` and ``error_share`` of
  the answers fail with an XID error;
- ``slow-drip``: the service time grows by ``ramp`` seconds per second since the fault,
  up to ``ceiling``; every answer still succeeds.

Only the node's own port takes ``POST /admin/fault`` (the balancer does not forward it).
"""

from __future__ import annotations

import random
import threading
import time

from aidrill._json import Json, JsonObject

MODES = ("lying-health", "wrong-model", "stuck-loading", "gpu-degradation", "slow-drip")
_STUCK_FOR = 30.0  # the longest a stuck node holds a request before its 503
_DEFAULTS: dict[str, dict[str, float]] = {
    "gpu-degradation": {"factor": 6.0, "error_share": 0.3},
    "slow-drip": {"ramp": 0.05, "ceiling": 2.0},
}


class NodeFault:
    """The node's fault mode, set and cleared through its admin path."""

    ADMIN_PATH = "/admin/fault"

    def __init__(self) -> None:
        self.mode: str | None = None
        self.params: dict[str, float] = {}
        self.since = 0.0
        self._cleared = threading.Event()
        self._random = random.Random(0)

    def set(self, body: Json) -> JsonObject:
        """Enter ``body["mode"]`` (with its parameters) or, for ``none``, leave it."""
        if not isinstance(body, dict):
            raise ValueError("expected {'mode': ...}")
        mode = body.get("mode")
        if mode in (None, "none"):
            self.mode, self.params = None, {}
            self._cleared.set()
            return {"mode": "none"}
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}: {', '.join(MODES)}")
        params = dict(_DEFAULTS.get(mode, {}))
        for name in params:
            value = body.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"{mode}: {name} must be a number, not {value!r}")
            params[name] = float(value)
        self._cleared.clear()
        self.mode, self.params, self.since = str(mode), params, time.monotonic()
        return {"mode": self.mode, **self.params}

    @property
    def wrong_model(self) -> bool:
        return self.mode == "wrong-model"

    def refusal(self) -> tuple[int, dict[str, str]] | None:
        """What an inference gets before it reaches the GPU, if the fault answers it."""
        if self.mode == "lying-health":
            return 500, {"error": "EngineDeadError: the engine loop is not running"}
        if self.mode == "stuck-loading":
            self._cleared.wait(_STUCK_FOR)  # a rollback lets the held requests go
            return 503, {"error": "the model is still loading"}
        return None

    def service_time(self, nominal: float) -> float:
        if self.mode == "gpu-degradation":
            return nominal * self.params["factor"]
        if self.mode == "slow-drip":
            grown = self.params["ramp"] * (time.monotonic() - self.since)
            return nominal + min(grown, self.params["ceiling"])
        return nominal

    def fails_now(self) -> tuple[int, dict[str, str]] | None:
        """An answer the degraded GPU loses (held under the GPU lock: one draw each)."""
        if self.mode == "gpu-degradation" and self._random.random() < self.params["error_share"]:
            return 500, {"error": "Xid 79: GPU has fallen off the bus"}
        return None
