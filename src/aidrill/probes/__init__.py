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
from pathlib import Path
from typing import Any

from aidrill._evidence import PROBES_FILE
from aidrill.lab import LabClient, default_state_dir
from aidrill.probes._checks import (
    run_inference_check,
    run_lab_capacity_check,
    run_lab_data_check,
)
from aidrill.probes._sets import (
    InferenceCheck,
    LabCapacityCheck,
    ProbeSet,
    find_probe_set,
    load_probe_set,
)

__all__ = ["ProbeSet", "find_probe_set", "load_probe_set", "probe_set_holds"]

logger = logging.getLogger(__name__)


def probe_set_holds(probe_set: str, configuration: dict[str, Any] | None = None) -> bool:
    """True when every check of the probe set holds against the lab right now."""
    checks = load_probe_set(probe_set).checks
    state_dir = (configuration or {}).get("aidrill_state_dir")
    lab = LabClient(Path(state_dir) if state_dir else default_state_dir())
    holds = True
    outcomes = []
    for check in checks:
        if isinstance(check, InferenceCheck):
            outcome = run_inference_check(check, lab)
        elif isinstance(check, LabCapacityCheck):
            outcome = run_lab_capacity_check(check, lab)
        else:
            outcome = run_lab_data_check(check, lab)
        level = logging.INFO if outcome["holds"] else logging.WARNING
        logger.log(level, "probe set %s: %s", probe_set, outcome)
        outcomes.append(outcome)
        holds = holds and bool(outcome["holds"])
    _record(configuration, probe_set, holds, outcomes)
    return holds


def _record(
    configuration: dict[str, Any] | None, probe_set: str, holds: bool, outcomes: list[Any]
) -> None:
    """Keep every check's figures in the run's evidence, so a steady state that did not
    hold says which check and by how much."""
    run_dir = (configuration or {}).get("aidrill_run_dir")
    if not run_dir:
        return
    line = json.dumps(
        {"time": time.time(), "probe_set": probe_set, "holds": holds, "checks": outcomes},
        default=str,
    )
    try:
        with (Path(run_dir) / PROBES_FILE).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as exc:
        logger.error("could not record the probe outcome in %s: %s", run_dir, exc)
