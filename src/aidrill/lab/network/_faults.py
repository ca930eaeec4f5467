"""Degraded networks in the lab: added latency with jitter, packet loss and a bandwidth
cap, on one path (clients → a region, the router → a region, or the cross-region
replication link), the way ``tc netem`` shapes what leaves toward a destination.

The lab's paths are TCP, so a lost packet is not a failed request: it costs a
retransmission (Linux waits at least 200 ms before resending), which is what a
request on that path pays with the loss probability.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TypedDict

from aidrill._json import JsonObject

RETRANSMISSION = 0.2  # seconds: Linux's minimum TCP retransmission timeout
PATHS = ("clients", "router", "replication")


@dataclass(frozen=True)
class Impairment:
    latency: float = 0.0  # seconds, one way, toward the destination
    jitter: float = 0.0  # seconds, ± around the latency, uniformly
    loss: float = 0.0  # probability that a transfer loses a packet
    bandwidth: float | None = None  # bytes per second

    def delay(self, size: int, rng: random.Random) -> float:
        """How long one transfer of ``size`` bytes is held on this path."""
        seconds = max(0.0, self.latency + rng.uniform(-self.jitter, self.jitter))
        if self.loss and rng.random() < self.loss:
            seconds += RETRANSMISSION
        if self.bandwidth:
            seconds += size / self.bandwidth
        return seconds

    def describe(self) -> ImpairmentSettings:
        return {"latency": self.latency, "jitter": self.jitter, "loss": self.loss,
                "bandwidth": self.bandwidth}  # fmt: skip


class ImpairmentSettings(TypedDict):
    """An impairment as the ledger, the ground truth and a proxy's snapshot show it."""

    latency: float
    jitter: float
    loss: float
    bandwidth: float | None


def _number(body: JsonObject, name: str) -> float | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a number, not {value!r}")
    return float(value)


def impairment_from(body: JsonObject) -> Impairment:
    """Checked settings of a degrade-network request."""
    latency = _number(body, "latency") or 0.0
    jitter = _number(body, "jitter") or 0.0
    loss = _number(body, "loss") or 0.0
    bandwidth = _number(body, "bandwidth")
    if not 0.0 <= latency <= 10.0 or not 0.0 <= jitter <= latency + 1e-9:
        raise ValueError("latency must be from 0 to 10 s and jitter at most the latency")
    if not 0.0 <= loss <= 0.5:
        raise ValueError("loss must be a probability from 0 to 0.5")
    if bandwidth is not None and bandwidth < 1024:
        raise ValueError("bandwidth must be at least 1024 B/s")
    return Impairment(latency, jitter, loss, bandwidth or None)
