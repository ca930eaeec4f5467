"""The DR plan: the system, its regions and topology, components and their targets."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aidrill._durations import Duration

Tier = Literal[
    "inference", "feature-store", "vector-index", "model-artifacts", "training", "evaluation"
]
Topology = Literal["active-passive", "active-active"]
TargetKind = Literal["lab", "aws", "kubernetes"]
STATEFUL_TIERS: frozenset[str] = frozenset(
    {"feature-store", "vector-index", "model-artifacts", "training", "evaluation"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    role: Literal["primary", "dr"]


class ServingSlo(_Strict):
    """What "serving" means: the thresholds of a healthy bucket."""

    success_ratio: float = Field(ge=0.0, le=1.0)
    p95_latency: Duration
    quality_floor: float = Field(ge=0.0, le=1.0)
    sustain: Duration = 10.0
    bucket: Duration = 1.0


class Component(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    tier: Tier
    rto: Duration
    rpo: Duration | None = None
    rationale: str = Field(min_length=1)
    owner: str | None = None

    @model_validator(mode="after")
    def _stateless_has_no_rpo(self) -> Component:
        if self.tier == "inference" and self.rpo is not None:
            raise ValueError("the inference tier is stateless: leave rpo out (n/a)")
        return self

    @property
    def is_stateful(self) -> bool:
        return self.tier in STATEFUL_TIERS


class Cadence(_Strict):
    tabletop: str = "quarterly"
    component: str = "quarterly"
    full_region: str = Field(default="yearly", alias="full-region")
    chaos: str = "quarterly"


class AllowList(_Strict):
    """What a run may touch; anything else is refused before any write."""

    targets: list[TargetKind] = ["lab"]
    aws_accounts: list[str] = []
    aws_regions: list[str] = []
    kubernetes_contexts: list[str] = []
    kubernetes_namespaces: list[str] = []


class AwsRegion(_Strict):
    """One region of an AWS estate: where its GPU nodes and data tiers are."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    gpu_groups: list[str] = Field(min_length=1, alias="gpu-groups")  # Auto Scaling groups
    artifact_bucket: str | None = Field(default=None, alias="artifact-bucket")
    feature_store: str | None = Field(default=None, alias="feature-store")  # redis://host:port
    vector_index: str | None = Field(default=None, alias="vector-index")  # base URL
    pipelines: str | None = None  # URL of the jobs' status (GET: {job: {step, ...}})


class AwsEstate(_Strict):
    """What a ``target: aws`` plan drills: accounts, regions, and every endpoint the
    load, probes and canaries call from outside."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    accounts: list[str] = Field(min_length=1)
    inference: str  # URL of the global inference endpoint the load calls
    serving_health: str | None = Field(default=None, alias="serving-health")
    golden_set: str = Field(alias="golden-set")  # labelled requests (JSON) to score answers
    index_queries: str | None = Field(default=None, alias="index-queries")
    feature_store: str | None = Field(default=None, alias="feature-store")  # primary endpoint
    regions: dict[str, AwsRegion] = Field(min_length=1)


class Guardrails(_Strict):
    """Abort a run (and roll back) when users are hurt beyond these limits for ``for``."""

    max_error_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    max_p95_latency: Duration | None = None
    for_: Duration = Field(default=10.0, alias="for")


class BlastRadius(_Strict):
    """Limits every fault action is checked against before it is injected."""

    max_gpu_node_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    allow_both_regions: bool = False


class LabSettings(_Strict):
    """How the embedded lab is sized; ignored by other targets."""

    nodes_per_region: int = Field(default=4, ge=1, le=16)
    gpu_quota: int = Field(default=6, ge=0, le=32)
    provisioning_delay: Duration = 2.0
    service_time: Duration = 0.08
    max_queue_per_node: int = Field(default=4, ge=1, le=64)
    health_interval: Duration = 0.5
    replication_lag: Duration = 1.0
    model_size_bytes: int = Field(default=1_048_576, ge=0, le=256 * 1024 * 1024)
    feature_refresh: Duration = 5.0
    feature_max_age: Duration = 30.0
    index_size: int = Field(default=20_000, ge=100, le=5_000_000)
    snapshot_interval: Duration = 3.0
    checkpoint_interval: Duration = 2.0


class Plan(_Strict):
    system: str = Field(min_length=1)
    version: int = 1
    target: TargetKind = "lab"
    topology: Topology = "active-passive"
    regions: list[Region] = Field(min_length=2, max_length=2)
    slo: ServingSlo
    components: list[Component] = Field(min_length=1)
    cadence: Cadence = Cadence()
    allow: AllowList = AllowList()
    scope: str | None = None
    exclusions: list[str] = []
    guardrails: Guardrails = Guardrails()
    blast_radius: BlastRadius = BlastRadius()
    lab: LabSettings = LabSettings()
    aws: AwsEstate | None = None

    @model_validator(mode="after")
    def _check_regions_and_names(self) -> Plan:
        roles = sorted(region.role for region in self.regions)
        if roles != ["dr", "primary"]:
            raise ValueError("regions: name exactly one primary and one dr region")
        names = [component.name for component in self.components]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"components: duplicate names {duplicates}")
        if self.target == "aws":
            if self.aws is None:
                raise ValueError("target aws: add an aws section naming the estate")
            missing = sorted({r.name for r in self.regions} - set(self.aws.regions))
            if missing:
                raise ValueError(f"aws.regions: no endpoints for the plan's regions {missing}")
        return self

    @property
    def primary_region(self) -> str:
        return next(region.name for region in self.regions if region.role == "primary")

    @property
    def dr_region(self) -> str:
        return next(region.name for region in self.regions if region.role == "dr")

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)
