"""Time served blind: how long the system served after a fault before its own health
signals reacted (DESIGN.md "Time served blind", README "Faults your health checks do
not see").

The reaction is whichever came first at or after the fault: an activity of the
target's own API that marks the *detect* step (a balancer took a node out of rotation,
a router failed over, an autoscaler started a replacement: the same evidence the
recovery phases start from), or a health signal aidrill polled itself
(``health.jsonl``: a balancer's rotation, a node's or a model server's health
endpoint) turning unhealthy in two polls running where it said healthy just before
the fault: what a load balancer polling it acts on. Never the target's ground-truth
log. No reaction before the observation window closes (the rollbacks start) is "never
during the window": the blind time is then the whole window, a lower bound.

The same polled signals also say what the health checks claimed while users were
served: the share of samples in the blind stretch where every signal said healthy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aidrill.measure._records import Event
from aidrill.measure._wire import BlindRecord

HEALTH_POLL_SOURCE = "the health checks aidrill polled"  # a detect mark's source in phases
CONFIRM_POLLS = 2  # polls running a signal must say unhealthy to count as a reaction


@dataclass(frozen=True)
class HealthSample:
    """One poll of the target's health signals (``health.jsonl``): name -> healthy."""

    time: float
    signals: dict[str, bool]

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> HealthSample:
        signals, time = record["signals"], record["time"]
        if not isinstance(signals, dict):
            raise TypeError("signals: expected a mapping")
        if not isinstance(time, int | float) or isinstance(time, bool):
            raise TypeError("time: expected a number")
        return cls(float(time), {str(k): bool(v) for k, v in signals.items()})

    @property
    def all_healthy(self) -> bool:
        return bool(self.signals) and all(self.signals.values())


@dataclass(frozen=True)
class Blind:
    t_fault: float
    seconds: float
    detected: bool
    reaction: str  # what reacted, or why nothing is known to have
    window_seconds: float
    health_passing: float | None  # share of health samples in the blind stretch all healthy
    health_samples: int

    def to_record(self, limit: float | None, users_hurt: bool) -> BlindRecord:
        return BlindRecord(
            measured=True,
            seconds=round(self.seconds, 3),
            detected=self.detected,
            reaction=self.reaction,
            window_seconds=round(self.window_seconds, 3),
            limit_seconds=limit,
            users_hurt=users_hurt,
            over_limit=limit is not None and users_hurt and self.seconds > limit,
            health_said_healthy=None
            if self.health_passing is None
            else round(self.health_passing, 3),
            health_samples=self.health_samples,
            summary=self.sentence(limit),
        )

    def sentence(self, limit: float | None) -> str:
        if self.detected:
            text = f"served blind for {self.seconds:.1f} s until {self.reaction}"
        else:
            text = (
                f"served blind for the whole {self.window_seconds:.1f} s window: no health "
                "signal of the target reacted"
            )
        if self.health_passing is not None:
            text += f" (its health checks passed in {self.health_passing:.0%} of the samples)"
        if limit is not None:
            text += f"; the plan allows {limit:g} s"
        return text


def served_blind(
    t_fault: float,
    window_end: float,
    activities: Sequence[Event],
    health: Sequence[HealthSample] = (),
) -> Blind:
    """The blind time after the fault at ``t_fault`` (see the module's description)."""
    found = [
        r
        for r in (_activity_reaction(t_fault, activities), health_reaction(t_fault, health))
        if r is not None and r[0] <= window_end
    ]
    first = min(found, key=lambda r: r[0]) if found else None
    end = first[0] if first is not None else window_end
    inside = [s for s in health if t_fault <= s.time <= end]
    watched = _watched(t_fault, health)
    passing = sum(_passes(s, watched) for s in inside) / len(inside) if inside else None
    return Blind(
        t_fault,
        max(0.0, end - t_fault),
        first is not None,
        first[1] if first is not None else "never during the window",
        max(0.0, window_end - t_fault),
        passing,
        len(inside),
    )


def _activity_reaction(t_fault: float, activities: Sequence[Event]) -> tuple[float, str] | None:
    """The first detect-step activity of the target's own API at or after the fault."""
    reactions = sorted(
        (e for e in activities if e.data.get("step") == "detect" and t_fault <= e.time),
        key=lambda e: e.time,
    )
    if not reactions:
        return None
    first = reactions[0]
    source = str(first.data.get("source") or "the target")
    reaction = f"{source} reacted: {first.data.get('action') or 'an activity'}"
    cause = first.data.get("cause")
    if cause:
        reaction += f" ({cause})"
    return first.time, reaction


def _watched(t_fault: float, health: Sequence[HealthSample]) -> set[str] | None:
    """The signals that said healthy in the last readable poll before the fault (a DR
    region's standby check, unhealthy by design, is not one); None without such a poll."""
    before = [s for s in health if s.time < t_fault and s.signals]
    if not before:
        return None
    return {n for n, ok in max(before, key=lambda s: s.time).signals.items() if ok}


def _passes(sample: HealthSample, watched: set[str] | None) -> bool:
    """Whether the health checks said all is well in this poll: every signal that was
    healthy before the fault and is still listed says healthy (every signal, where no
    poll before the fault says which were)."""
    if watched is None:
        return sample.all_healthy
    listed = [ok for n, ok in sample.signals.items() if n in watched]
    return bool(listed) and all(listed)


def health_reaction(t_fault: float, health: Sequence[HealthSample]) -> tuple[float, str] | None:
    """The first poll at or after the fault from which a signal said unhealthy, or was
    no longer listed, in ``CONFIRM_POLLS`` polls running, where it said healthy in the
    last poll before the fault (one slow answer is not a reaction: a load balancer acts
    on consecutive failures too). A signal withdrawn is the target's health view
    letting go of it: a pod deleted by a scale-down leaves its Service's endpoints
    without ever reporting NotReady, an instance terminated leaves its group. A signal
    first seen after the fault (a replacement node) or a poll that could not be read
    reacts to nothing."""
    ordered = sorted(health, key=lambda s: s.time)
    watched = _watched(t_fault, ordered) or set()
    since: dict[str, tuple[float, int]] = {}  # signal -> (first unhealthy poll, polls)
    for sample in ordered:
        if sample.time < t_fault or not sample.signals:
            continue
        since = {
            n: (since[n][0], since[n][1] + 1) if n in since else (sample.time, 1)
            for n in sorted(watched)
            if sample.signals.get(n) is not True
        }
        confirmed = sorted((t, n) for n, (t, polls) in since.items() if polls >= CONFIRM_POLLS)
        if confirmed:
            first = confirmed[0][1]
            said = "said unhealthy" if sample.signals.get(first) is False else "was withdrawn"
            more = f" (and {len(confirmed) - 1} more)" if len(confirmed) > 1 else ""
            return confirmed[0][0], f"health signal {first} {said}{more}"
    return None


NOT_WATCHED = (
    "not measured: the target exposed no activity log and no health signal aidrill "
    "could read, so when its own health checks reacted is unknown"
)


def blind_not_measured(window_seconds: float, limit: float | None, users_hurt: bool) -> BlindRecord:
    """The blind record of a run that watched none of the target's health reactions."""
    return BlindRecord(
        measured=False,
        seconds=None,
        detected=False,
        reaction=NOT_WATCHED,
        window_seconds=round(max(0.0, window_seconds), 3),
        limit_seconds=limit,
        users_hurt=users_hurt,
        over_limit=False,
        health_said_healthy=None,
        health_samples=0,
        summary=f"time served blind {NOT_WATCHED}",
    )
