"""Where the recovery time went: an RTO split into phases at the moments the target's
own API says its automation reached each step (DESIGN.md "Recovery phases").

The boundaries, in order, each the first activity of its step at or after the one
before (never the target's ground-truth log). The serving tier reads the target's
activities, the health checks aidrill polled and who served the load's answers; a data
tier reads its own activities (a managed store's failover) and the experiment's
recovery steps (a restore the runbook ran):

- *detect*: fault → the system acted on it (a balancer or router took the node or
  region out, an autoscaler started a launch, a Deployment created a replacement);
- *provision*: → replacement capacity exists (instance or pod running, node up);
- *load*: → the replacement serves (model loaded and ready: admitted to rotation, or
  the load's first answer from a node that served none before the fault);
- *warm*: → users' series healthy and sustained (the measured recovery).

The phases partition the fault → recovery interval, so they add up to the RTO. A
boundary no evidence marks before the recovery is unknown: its two phases are shown as
one ("provision+load"), never split by a guess. Steps reached only after users had
recovered (spare capacity carried the load) are off the recovery path and left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aidrill.measure._records import Bucket, Event
from aidrill.measure._wire import PhaseRecord

STEPS = ("detect", "provision", "load")  # the activities that end the first three phases
PHASES = (*STEPS, "warm")
_NOT_DONE = ("failed", "cancelled", "unreadable")


@dataclass(frozen=True)
class Phase:
    """One interval of a recovery, in UTC epoch seconds; ``name`` joins the phases an
    unknown boundary leaves unsplit ("provision+load")."""

    name: str
    start: float
    end: float
    evidence: str  # what marked its end

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def to_record(self, t_fault: float, reference: Mapping[str, float]) -> PhaseRecord:
        """The phase, with the plan's reference for it (a joined phase: the sum of its
        parts' references, where the plan states each)."""
        parts = self.name.split("+")
        expected = sum(reference[p] for p in parts) if all(p in reference for p in parts) else None
        start, seconds = round(self.start - t_fault, 3), round(self.seconds, 3)
        if expected is None:  # left out of the record, not written as null
            return PhaseRecord(
                phase=self.name, from_fault_seconds=start, seconds=seconds, evidence=self.evidence
            )
        return PhaseRecord(
            phase=self.name, from_fault_seconds=start, seconds=seconds, evidence=self.evidence,
            reference_seconds=expected,
        )  # fmt: skip


def over_reference(records: Sequence[PhaseRecord]) -> str | None:
    """Which phase ate the margin: the one furthest over the plan's reference."""
    over = [
        (r.seconds - r.reference_seconds, r.phase)
        for r in records
        if r.reference_seconds is not None
    ]
    worst = max(over, default=None)
    if worst is None or worst[0] <= 0:
        return None
    return f"{worst[1]} took {worst[0]:.1f} s more than the plan's reference"


def recovery_phases(
    t_fault: float,
    t_recovered: float,
    activities: Sequence[Event],
    resolution: float = 1.0,
    serving: bool = True,
) -> list[Phase]:
    """The fault → recovery interval split at each step's first activity (``step`` in
    the activity's record); see the module's description. The recovery instant is a
    bucket's start (``resolution`` wide): a step inside that bucket is on the path and
    its boundary is the recovery instant; one later than that is off the path
    (``serving``: the capacity left carried the load; a data tier: its series was
    healthy again before that step was marked)."""
    marks = sorted(
        (e for e in activities if e.data.get("step") in STEPS
         and e.data.get("status") not in _NOT_DONE),
        key=lambda e: e.time,
    )  # fmt: skip
    phases: list[Phase] = []
    start, pending, later = t_fault, [], []
    for step in STEPS:
        mark = next((e for e in marks if e.data["step"] == step and start <= e.time), None)
        if mark is not None and mark.time > t_recovered + resolution:
            later.append(step)  # reached after users had recovered: off the path
            continue
        pending.append(step)
        if mark is None:
            continue  # unknown: this phase runs on into the next, unsplit
        what = f"{mark.data.get('source')}: {mark.data.get('action')}"
        end = min(mark.time, t_recovered)
        phases.append(Phase("+".join(pending), start, end, what))
        start, pending = end, []
    pending.append("warm")
    evidence = "users' series healthy, sustained"
    if later:
        steps = " and ".join(later)
        evidence += (
            f" (before {steps}: the capacity left carried the load)"
            if serving
            else f" (before {steps} was marked: served again before that)"
        )
    phases.append(Phase("+".join(pending), start, t_recovered, evidence))
    return phases


ANSWERS_SOURCE = "the load's answers"  # a load mark's source: who served, by their header


def new_node_marks(buckets: Sequence[Bucket], t_fault: float) -> list[Event]:
    """A *load* mark per node that served none of the answers before the fault: the end
    of the bucket holding its first answer after it (the answer began in that bucket, so
    by its end the node was serving users; one bucket is the resolution).

    Only where the server names its nodes (a node header counted before the fault):
    without that, a new node cannot be told from an old one."""
    before = {node for b in buckets if b.start < t_fault for node in b.nodes}
    if not before:
        return []
    seen, marks = set(before), []
    for bucket in sorted((b for b in buckets if b.start >= t_fault), key=lambda b: b.start):
        for node in sorted(set(bucket.nodes) - seen):
            seen.add(node)
            action = f"first answer from node {node}, which served none before the fault"
            marks.append(_mark(bucket.end, "first_answer", ANSWERS_SOURCE, action, "load"))
    return marks


RECOVERY_STEP_SOURCE = "the experiment's recovery step"  # the runbook, as the run recorded it


def recovery_step_marks(events: Sequence[Event]) -> list[Event]:
    """The experiment's own recovery steps (method actions that restore what a fault
    took, recorded by the run as ``recovery_started``/``recovery_ended``) as marks: the
    runbook starting one is the organisation acting on the fault (*detect*); one that
    succeeded has put back what the fault took (*provision*). Whether the restored
    copy then serves is the tier's own series: left to the next boundary."""
    marks = []
    for event in events:
        name = event.data.get("activity")
        if event.kind == "recovery_started":
            step, action = "detect", f"{name} started"
        elif event.kind == "recovery_ended" and event.data.get("status") == "succeeded":
            step, action = "provision", f"{name} finished"
        else:
            continue
        marks.append(_mark(event.time, event.kind, RECOVERY_STEP_SOURCE, action, step))
    return marks


def health_mark(time: float, kind: str, source: str, reaction: str) -> Event:
    """A health signal aidrill polled turning (``health_reaction``): the system
    detecting the fault, beside the target's own activities."""
    return _mark(time, kind, source, reaction, "detect")


def _mark(time: float, kind: str, source: str, action: str, step: str) -> Event:
    """A recovery step reached, as ``recovery_phases`` reads an activity."""
    data = {"source": source, "action": action, "step": step, "status": "succeeded"}
    return Event(time, kind, data)
