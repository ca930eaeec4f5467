"""``result.json``: the typed record of one run, owning its wire format both ways.

The run writes it once; reports read the fault time, the observation window, the
recovery instant and the validity from it, never recomputing them from raw events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aidrill.measure._validity import InvalidReason


@dataclass(frozen=True)
class RunResult:
    run_id: str
    experiment: str
    status: str
    deviated: bool
    valid: bool
    invalid_reasons: tuple[InvalidReason, ...] = ()
    test_type: str = "chaos"
    target: str = "lab"
    started: float | None = None
    ended: float | None = None
    fault_at: float | None = None
    observation_end: float | None = None
    components: tuple[dict[str, Any], ...] = ()
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def inference_recovered_at(self) -> float | None:
        """The instant of sustained recovery of the inference tier, if it recovered."""
        for component in self.components:
            achieved = component.get("achieved") or {}
            if component.get("tier") == "inference" and achieved.get("rto_seconds") is not None:
                anchor = epoch(achieved.get("fault_at")) or self.fault_at
                return None if anchor is None else anchor + float(achieved["rto_seconds"])
        return None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RunResult:
        """Read a result record; one written before validity was recorded (schema 1)
        counts as valid only if it says so, which it never does."""
        reasons = tuple(
            InvalidReason.from_record(r)
            for r in record.get("invalid_reasons") or []
            if isinstance(r, dict)
        )
        return cls(
            run_id=str(record.get("run_id", "")),
            experiment=str(record.get("experiment", "")),
            status=str(record.get("status", "unknown")),
            deviated=bool(record.get("deviated")),
            valid=record.get("valid") is True,
            invalid_reasons=reasons,
            test_type=str(record.get("test_type", "chaos")),
            target=str(record.get("target", "lab")),
            started=epoch(record.get("started")),
            ended=epoch(record.get("ended")),
            fault_at=epoch(record.get("fault_injected")),
            observation_end=epoch(record.get("observation_end")),
            components=tuple(c for c in record.get("components") or [] if isinstance(c, dict)),
            record=record,
        )


def iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def epoch(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
