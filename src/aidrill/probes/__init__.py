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

import logging
from pathlib import Path
from typing import Any

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
    for check in checks:
        if isinstance(check, InferenceCheck):
            outcome = run_inference_check(check, lab)
        elif isinstance(check, LabCapacityCheck):
            outcome = run_lab_capacity_check(check, lab)
        else:
            outcome = run_lab_data_check(check, lab)
        level = logging.INFO if outcome["holds"] else logging.WARNING
        logger.log(level, "probe set %s: %s", probe_set, outcome)
        holds = holds and bool(outcome["holds"])
    return holds
