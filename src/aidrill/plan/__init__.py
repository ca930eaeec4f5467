"""The DR plan model: components, targets, SLO, topology, allow-list."""

from aidrill.plan._load import DEFAULT_PLAN_PATH, load_plan, plan_from_document
from aidrill.plan._model import (
    STATEFUL_TIERS,
    AllowList,
    AwsEstate,
    AwsPosture,
    AwsRegion,
    BlastRadius,
    Component,
    DegradationBudget,
    Guardrails,
    KubernetesEstate,
    KubernetesRegion,
    LabSettings,
    Plan,
    Region,
    ReplicatedBucket,
    ServingSlo,
)

__all__ = [
    "DEFAULT_PLAN_PATH",
    "STATEFUL_TIERS",
    "AllowList",
    "AwsEstate",
    "AwsPosture",
    "AwsRegion",
    "BlastRadius",
    "Component",
    "DegradationBudget",
    "Guardrails",
    "KubernetesEstate",
    "KubernetesRegion",
    "LabSettings",
    "Plan",
    "Region",
    "ReplicatedBucket",
    "ServingSlo",
    "load_plan",
    "plan_from_document",
]
