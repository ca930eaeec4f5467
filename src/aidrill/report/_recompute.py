"""A report never believes a run's result.json: it measures the run again from its raw
evidence, with the same code the run used, and says where the file disagrees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aidrill._run_result import compute_run_result  # the run's own measurement code
from aidrill.errors import DrillError
from aidrill.measure import RESULT_SCHEMA, ResultRecord

# What a verdict rests on: a difference in any of these is a disagreement.
_RUN_FIELDS = ("valid",)
_COMPONENT_FIELDS = ("verdict", "rto_verdict", "rpo_verdict")
_ACHIEVED_FIELDS = ("rto_seconds", "recovered", "rpo_seconds")


def recompute(
    path: Path, recorded: dict[str, Any] | None, status: str | None, deviated: bool | None
) -> tuple[ResultRecord | None, list[str], str | None]:
    """(the result its evidence gives, every disagreement with ``recorded``, or why it
    cannot be measured). ``status`` and ``deviated`` come from the journal where there is
    one (else from ``recorded``)."""
    recorded = recorded or {}
    try:
        result = compute_run_result(
            path,
            status or str(recorded.get("status") or "unknown"),
            bool(recorded.get("deviated")) if deviated is None else deviated,
            recorded.get("abort_reason"),
            ended=recorded.get("ended"),
        )
    except (DrillError, OSError, ValueError, KeyError, TypeError) as exc:
        return None, [], f"its evidence cannot be measured: {exc}"
    if recorded.get("status") in ("aborted",):
        result = result.model_copy(update={"status": "aborted"})
    found = disagreements(recorded, result.to_json()) if recorded else []
    if recorded and recorded.get("schema") == RESULT_SCHEMA:
        try:
            ResultRecord.parse(recorded)
        except ValueError as exc:
            found.append(f"result.json does not fit its schema ({RESULT_SCHEMA}): {exc}")
    if found and recorded.get("schema") != RESULT_SCHEMA:
        # Written by another version of aidrill: its rules may differ, not its evidence.
        found = [f"{item} (result.json was written as {recorded.get('schema')})" for item in found]
    return result, found, None


def disagreements(recorded: dict[str, Any], measured: dict[str, Any]) -> list[str]:
    """Each figure or verdict where result.json says one thing and the evidence another."""
    found = []
    for key in _RUN_FIELDS:
        if recorded.get(key) != measured.get(key):
            found.append(
                f"result.json says {key} {_say(recorded.get(key))}; "
                f"its evidence says {_say(measured.get(key))}"
            )
    by_name = {str(c.get("name")): c for c in recorded.get("components") or []}
    for component in measured.get("components") or []:
        name = str(component.get("name"))
        said = by_name.pop(name, None)
        if said is None:
            found.append(f"result.json leaves out {name}; its evidence measures it")
            continue
        for key in _COMPONENT_FIELDS:
            if said.get(key) != component.get(key):
                found.append(
                    f"result.json says {name} {key.replace('_', ' ')} {_say(said.get(key))}; "
                    f"its evidence says {_say(component.get(key))}"
                )
        mine, theirs = component.get("achieved") or {}, said.get("achieved") or {}
        for key in _ACHIEVED_FIELDS:
            if not _same(theirs.get(key), mine.get(key)):
                found.append(
                    f"result.json says {name} {key.replace('_', ' ')} {_say(theirs.get(key))}; "
                    f"its evidence says {_say(mine.get(key))}"
                )
    found += [f"result.json names {name}, which its evidence does not" for name in by_name]
    return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 1e-6
    return bool(a == b)


def _say(value: Any) -> str:
    return "nothing" if value is None else str(value).lower()
