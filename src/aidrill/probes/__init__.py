"""Steady-state probes: Chaos Toolkit probe functions that run the YAML probe sets.

Reference a set from an experiment with a plain python probe, so ``chaos run``
understands it too::

    - type: probe
      name: inference-within-slo
      tolerance: true
      provider:
        type: python
        module: aidrill.probes
        func: probe_set_holds
        arguments: {probe_set: probes/lab-inference.yaml}
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidrill._evidence import PROBES_FILE
from aidrill._http import HttpClient
from aidrill._json import Configuration, JsonOut
from aidrill.load.protocols import protocol_for
from aidrill.probes._checks import run_inference_check
from aidrill.probes.sets import (
    CheckOutcome,
    InferenceCheck,
    LabCapacityCheck,
    LabDataCheck,
    ProbeSet,
    find_probe_set,
    load_probe_set,
)

if TYPE_CHECKING:
    from aidrill.targets import Endpoints

__all__ = [
    "CheckOutcome",
    "InferenceCheck",
    "LabCapacityCheck",
    "LabDataCheck",
    "ProbeSet",
    "decisive_outcomes",
    "find_probe_set",
    "golden_set_preflight",
    "load_probe_set",
    "probe_set_holds",
    "run_inference_check",
]

logger = logging.getLogger(__name__)


def probe_set_holds(probe_set: str, configuration: Configuration | None = None) -> bool:
    """True when every check of the probe set holds against the run's target right now.

    The target is the one the run drills (``aidrill_target`` in the configuration, set
    by the aidrill control; else the plan's), found through the plan (``aidrill_plan``,
    ``$AIDRILL_PLAN`` or drplan.yaml)."""
    from aidrill.targets import target_of_configuration  # targets build on probe sets

    checks = load_probe_set(probe_set).checks
    target = target_of_configuration(configuration or {})
    holds = True
    outcomes: list[CheckOutcome] = []
    for check in checks:
        if isinstance(check, InferenceCheck):
            outcome = _sample_inference(check, target, probe_set, outcomes)
        else:
            outcome = target.run_check(check)
            _log(probe_set, outcome)
            outcomes.append(outcome)
        holds = holds and outcome.holds
    _record(configuration, probe_set, holds, outcomes)
    return holds


def _sample_inference(
    check: InferenceCheck, target: Any, probe_set: str, outcomes: list[CheckOutcome]
) -> CheckOutcome:
    """The check's samples, up to its ``attempts``, each kept; the last one decides."""
    endpoints = target.endpoints()
    http = HttpClient(endpoints.http)
    outcome = CheckOutcome(check.name, False)
    for attempt in range(1, check.attempts + 1):
        if attempt > 1:
            time.sleep(check.attempt_pause)
        outcome = run_inference_check(check, endpoints, http)
        if check.attempts > 1:
            figures = {**outcome.figures, "attempt": f"{attempt} of {check.attempts}"}
            outcome = CheckOutcome(outcome.check, outcome.holds, figures)
        _log(probe_set, outcome)
        outcomes.append(outcome)
        if outcome.holds:
            break
    return outcome


_PREFLIGHT_REQUESTS = 20


def golden_set_preflight(
    endpoints: Endpoints, quality_floor: float, timeout: float
) -> tuple[list[str], Mapping[str, JsonOut]]:
    """Pre-flight of the golden set: a target that says it is nominal must score its
    golden set to the quality floor, or every quality figure of the run would measure
    the golden set (or the protocol's settings), not the system. Returns what is off and
    the check's figures."""
    try:
        samples = json.loads(endpoints.golden_set.read_text(encoding="utf-8")).get("samples")
    except (OSError, ValueError, AttributeError) as exc:
        return [f"the golden set {endpoints.golden_set} cannot be read: {exc}"], {}
    if not samples:
        return [f"the golden set {endpoints.golden_set} holds no samples"], {}
    protocol = protocol_for(endpoints.protocol)
    try:
        protocol.headers(endpoints.inference, b"")  # credentials a signature needs
    except ValueError as exc:
        return [str(exc)], {}
    check = InferenceCheck(
        type="inference",
        name="golden set",
        requests=_PREFLIGHT_REQUESTS,
        timeout=timeout,
        success_ratio=0.0,
        p95_latency=3600.0,
        quality=quality_floor,
    )
    client = HttpClient(endpoints.http)
    try:
        outcome = run_inference_check(check, endpoints, client)
    finally:
        client.close()
    where = f"{endpoints.inference.rstrip('/')} ({endpoints.protocol.kind} protocol)"
    quality = outcome.figures.get("quality")
    if outcome.figures.get("success_ratio") == 0:
        return [
            f"the inference endpoint {where} answered none of the golden set's requests: "
            "check protocol.kind, protocol.path and the plan's headers"
        ], dict(outcome.figures)
    if isinstance(quality, int | float) and quality < quality_floor:
        return [
            f"the golden set scores {quality:.2f} against the healthy endpoint "
            f"{where}; the floor is {quality_floor:g}: check its expected answers and the "
            "protocol's settings (model, answer, output)"
        ], dict(outcome.figures)
    return [], dict(outcome.figures)


def decisive_outcomes(checks: list[Any]) -> list[CheckOutcome]:
    """A probe record's check outcomes (as ``probes.jsonl`` holds them), each check's
    last sample only (the one that decided it: earlier samples of a check taken again
    did not)."""
    last: dict[str, CheckOutcome] = {}
    for check in checks:
        if isinstance(check, dict):
            outcome = CheckOutcome.from_record(check)
            last.pop(outcome.check, None)
            last[outcome.check] = outcome
    return list(last.values())


def _log(probe_set: str, outcome: CheckOutcome) -> None:
    level = logging.INFO if outcome.holds else logging.WARNING
    logger.log(level, "probe set %s: %s", probe_set, outcome.to_record())


def _record(
    configuration: Configuration | None,
    probe_set: str,
    holds: bool,
    outcomes: list[CheckOutcome],
) -> None:
    """Keep every check's figures in the run's evidence, so a steady state that did not
    hold says which check and by how much."""
    run_dir = (configuration or {}).get("aidrill_run_dir")
    if not isinstance(run_dir, str) or not run_dir:
        return
    line = json.dumps(
        {
            "time": time.time(),
            "probe_set": probe_set,
            "holds": holds,
            "checks": [o.to_record() for o in outcomes],
        },
        default=str,
    )
    try:
        with (Path(run_dir) / PROBES_FILE).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as exc:
        logger.error("could not record the probe outcome in %s: %s", run_dir, exc)
