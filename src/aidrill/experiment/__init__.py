"""Experiments: Chaos Toolkit files plus aidrill's extension, validated before a run."""

from aidrill.experiment._extension import AidrillExtension, LoadSettings
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
    "experiment_from_document",
    "find_aidrill_extension",
    "load_experiment",
]
