"""Experiments: Chaos Toolkit files plus aidrill's extension, validated before a run."""

from aidrill.experiment._blast import (
    PlannedFault,
    check_blast_radius,
    declared_scope,
    describe_fault,
    describe_limits,
    extension_scopes,
    planned_faults,
)
from aidrill.experiment._estate_names import unknown_name
from aidrill.experiment._extension import AidrillExtension, LoadSettings, Participant
from aidrill.experiment._known import driver_region, driver_share, known_scope
from aidrill.experiment._load import (
    CONTROL_MODULE,
    LoadedExperiment,
    experiment_from_document,
    find_aidrill_extension,
    load_experiment,
)

__all__ = [
    "CONTROL_MODULE",
    "AidrillExtension",
    "LoadSettings",
    "LoadedExperiment",
    "Participant",
    "PlannedFault",
    "check_blast_radius",
    "declared_scope",
    "describe_fault",
    "describe_limits",
    "driver_region",
    "driver_share",
    "experiment_from_document",
    "extension_scopes",
    "find_aidrill_extension",
    "known_scope",
    "load_experiment",
    "planned_faults",
    "unknown_name",
]
