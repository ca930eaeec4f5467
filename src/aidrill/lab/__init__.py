"""The embedded two-region lab: a target on loopback that knows nothing of drills."""

from aidrill.lab.control._client import (
    DEFAULT_STATE_DIR,
    STATE_DIR_ENV,
    TWINS,
    LabClient,
    LabInfo,
    default_state_dir,
    read_fault_ledger,
    read_lab_info,
    start_lab,
    stop_lab,
)

__all__ = [
    "DEFAULT_STATE_DIR",
    "STATE_DIR_ENV",
    "TWINS",
    "LabClient",
    "LabInfo",
    "default_state_dir",
    "read_fault_ledger",
    "read_lab_info",
    "start_lab",
    "stop_lab",
]
