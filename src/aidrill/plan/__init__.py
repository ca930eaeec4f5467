"""The DR plan model: components, targets, SLO, topology, allow-list."""

from aidrill.plan._load import DEFAULT_PLAN_PATH, load_plan, plan_from_document
from aidrill.plan._model import (
    STATEFUL_TIERS,
    AllowList,
    AwsEstate,
    AwsRegion,
    BlastRadius,
    Component,
    Guardrails,
    LabSettings,
    Plan,
    Region,
    ServingSlo,
)

__all__ = [
    "DEFAULT_PLAN_PATH",
    "STATEFUL_TIERS",
    "AllowList",
    "AwsEstate",
    "AwsRegion",
    "BlastRadius",
    "Component",
    "Guardrails",
    "LabSettings",
    "Plan",
    "Region",
    "ServingSlo",
    "load_plan",
    "plan_from_document",
]
