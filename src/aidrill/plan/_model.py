"""The DR plan: the system, its regions and topology, components and their targets."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    model_validator,
)

from aidrill._durations import Duration
from aidrill.kinds import TargetName, target_kind

Tier = Literal[
    "inference",
    "feature-store",
    "vector-index",
    "model-artifacts",
    "model-registry",
    "training",
    "evaluation",
]
Topology = Literal["active-passive", "active-active"]
STATEFUL_TIERS: frozenset[str] = frozenset(get_args(Tier)) - {"inference"}


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
    # Coverage (DESIGN.md): a bucket of the load's series with fewer answers than this is
    # unknown, never healthy. Default: a third of what the load sends per bucket.
    min_answers: int | None = Field(default=None, ge=1)
    # How long an unknown stretch may outlast one bucket before it is a gap that leaves
    # the verdicts that need it not measured. Default: one bucket.
    grace: Duration | None = None

    # Streamed generation (an openai-* protocol with stream: true): a bucket is healthy
    # only when its streamed answers also meet these, where set.
    ttft_p95: Duration | None = None  # time to first token, 95th percentile
    itl_p95: Duration | None = None  # inter-token latency, 95th percentile
    min_tokens_per_second: float | None = Field(default=None, gt=0)
    # Time served blind (README "Faults your health checks do not see"): the longest
    # the serving tier may hurt users after a fault before its own health signals react.
    max_blind: Duration | None = None

    @property
    def coverage_grace(self) -> float:
        return self.bucket if self.grace is None else self.grace


class DegradationBudget(_Strict):
    """What a component may do *during* a fault and still have degraded gracefully:
    the worst error ratio, p95 and answer quality of any bucket, and for how long in
    all it may be outside the SLO."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    max_error_ratio: float = Field(ge=0.0, le=1.0, alias="max-error-ratio")
    max_p95: Duration | None = Field(default=None, alias="max-p95")
    quality_floor: float | None = Field(default=None, ge=0.0, le=1.0, alias="quality-floor")
    for_: Duration = Field(alias="for")


class Component(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    tier: Tier
    rto: Duration
    rpo: Duration | None = None
    rationale: str = Field(min_length=1)
    owner: str | None = None
    degradation: DegradationBudget | None = None
    bia: str | None = None  # where in the business-impact analysis its targets come from
    # What each recovery phase should take (detect, provision, load, warm), e.g. from a
    # vendor's published cold start: the report says which phase ate the margin.
    reference: dict[str, Duration] = {}
    max_blind: Duration | None = None  # this component's own limit over slo.max_blind

    @model_validator(mode="after")
    def _stateless_has_no_rpo(self) -> Component:
        if self.tier == "inference" and self.rpo is not None:
            raise ValueError("the inference tier is stateless: leave rpo out (n/a)")
        unknown = sorted(set(self.reference) - {"detect", "provision", "load", "warm"})
        if unknown:
            raise ValueError(f"reference: {unknown} are no recovery phases "
                             "(detect, provision, load, warm)")  # fmt: skip
        return self

    @property
    def is_stateful(self) -> bool:
        return self.tier in STATEFUL_TIERS


class Cadence(_Strict):
    tabletop: str = "quarterly"
    component: str = "quarterly"
    full_region: str = Field(default="yearly", alias="full-region")
    chaos: str = "quarterly"


class PlanApproval(_Strict):
    """Who approved the test plan these drills follow, and when."""

    by: str = Field(min_length=1)
    role: str = Field(min_length=1)
    at: dt.date
    reference: str | None = None  # the approved document (id, revision)


class ThirdParty(_Strict):
    """A provider the recovery depends on (cloud, model host, managed database)."""

    name: str = Field(min_length=1)
    provides: str = Field(min_length=1)
    # Whether the provider took part in this period's tests (DORA asks for it where
    # relevant), and how.
    participated: bool = False
    how: str | None = None


class ManagementReview(_Strict):
    """The management review of the tests' results, once held."""

    by: str = Field(min_length=1)
    role: str = Field(min_length=1)
    at: dt.date
    decision: str = Field(min_length=1)


class Governance(_Strict):
    """What an auditor asks around the measurements: where the targets come from, who
    approved the tests, who depends on whom, and who reviewed the outcome."""

    bia: str | None = None  # the business-impact analysis document the targets come from
    test_plan: PlanApproval | None = Field(default=None, alias="test-plan")
    third_parties: list[ThirdParty] = Field(default=[], alias="third-parties")
    management_review: ManagementReview | None = Field(default=None, alias="management-review")


class AllowList(_Strict):
    """What a run may touch; anything else is refused before any write."""

    targets: list[str] = ["lab"]  # names of kinds of target (aidrill.kinds)
    aws_accounts: list[str] = []
    aws_regions: list[str] = []
    kubernetes_contexts: list[str] = []
    kubernetes_namespaces: list[str] = []
    # Resources a run may touch beyond those the estate names (its GPU groups and their
    # instances, its buckets, its inference Deployments and GPU nodes): instance ids,
    # group, bucket, node or Deployment names. Anything else an action reaches is refused.
    resources: list[str] = []


class _RegionData(_Strict):
    """Where one region's data tiers answer, for a target reached through its APIs."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    artifact_bucket: str | None = Field(default=None, alias="artifact-bucket")
    # The published model's object in that bucket, and where its checksum is read:
    # metadata:<name> (a SHA-256 in its metadata), sidecar:<suffix> (a SHA-256 in the
    # object <key><suffix>), checksum-sha256 (S3's own), or etag (single-part MD5).
    artifact_key: str = Field(default="models/model.npz", alias="artifact-key", min_length=1)
    artifact_checksum: str = Field(
        default="metadata:sha256",
        alias="artifact-checksum",
        pattern=r"^(metadata:[A-Za-z0-9_-]+|sidecar:\S+|checksum-sha256|etag)$",
    )
    feature_store: str | None = Field(default=None, alias="feature-store")  # redis://host:port
    vector_index: str | None = Field(default=None, alias="vector-index")  # base URL
    pipelines: str | None = None  # URL of the jobs' status (GET: {job: {step, ...}})
    model_registry: str | None = Field(default=None, alias="model-registry")  # MLflow base URL


class EnvReference(_Strict):
    """A value read from the environment when a run starts (``{type: env, key: NAME}``,
    as Chaos Toolkit's secrets say it): a token never written into the plan."""

    type: Literal["env"]
    key: str = Field(min_length=1)


def _known_protocol(kind: str) -> str:
    from aidrill.load.protocols import protocol_names  # plan is loaded by then

    if kind not in protocol_names():
        raise ValueError(f"unknown protocol {kind!r} (known: {', '.join(protocol_names())})")
    return kind


class ProtocolSettings(_Strict):
    """How the load, the probes and pre-flight ask the inference endpoint (the modules
    of ``aidrill.load.protocols``) and what they send besides each golden sample."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    kind: Annotated[str, AfterValidator(_known_protocol)] = "aidrill"
    path: str | None = Field(default=None, pattern=r"^/")  # default: the protocol's own
    model: str | None = None  # the served model's name (OpenAI ``model``, v2 ``{model}``)
    stream: bool = False  # openai-chat, openai-completions, sagemaker: answers streamed
    max_tokens: int = Field(default=64, ge=1, le=32768, alias="max-tokens")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int | None = 0
    output: str | None = None  # open-inference: the output tensor read as the answer
    region: str | None = None  # sagemaker: the region signed for (else AWS_REGION)
    request: str | None = None  # http: a Jinja2 template of the body over ``sample``
    answer: str | None = None  # http: a JMESPath expression of the answer in the reply
    content_type: str = Field(default="application/json", alias="content-type")
    # Response headers naming the region and the node that served an answer, where the
    # server sends them (aidrill's lab does; a gateway may add its own, such as
    # X-Served-By): counted per bucket as the evidence of who served users.
    region_header: str = Field(default="X-Aidrill-Region", alias="region-header", min_length=1)
    node_header: str = Field(default="X-Aidrill-Node", alias="node-header", min_length=1)


def _no_password(dsn: str) -> str:
    """A connection string written into the plan names no password: the plan is copied
    into every run's evidence."""
    if re.search(r"://[^/@\s]*:[^/@\s]*@", dsn) or re.search(r"\bpassword\s*=", dsn, re.I):
        raise ValueError(
            "the connection string holds a password: name an environment variable "
            "instead ({type: env, key: NAME}), since the plan is copied into the evidence"
        )
    return dsn


class VectorStoreSettings(_Strict):
    """A vector database the search series queries, where it is not the serving
    endpoint's own ``POST /search`` (the lab's index service): each held-out query of
    ``index-queries`` asked for its ``k`` nearest neighbours, scored by recall@k against
    the exact answers the queries file holds."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    kind: Literal["pgvector"]
    # postgresql://user@host:port/database; a password through the environment only
    # ({type: env, key: NAME} whose value is the whole connection string).
    dsn: Annotated[str, AfterValidator(_no_password)] | EnvReference
    table: str = Field(min_length=1)
    id_column: str = Field(default="id", alias="id-column", min_length=1)
    embedding_column: str = Field(default="embedding", alias="embedding-column", min_length=1)
    distance: Literal["l2", "cosine", "inner-product"] = "l2"


class _Serving(_Strict):
    """Every endpoint the load, probes and canaries call from outside."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    inference: str  # URL of the global inference endpoint (or ingress) the load calls
    # Sent with every request of the load, the probes, canaries and health checks
    # (an Authorization header, an API key): values never reach evidence or reports.
    headers: dict[str, str | EnvReference] = {}
    # TLS: a CA bundle (PEM, relative to the plan) for endpoints behind a private CA;
    # verification can be turned off only explicitly, and the run says so.
    ca_bundle: str | None = Field(default=None, alias="ca-bundle")
    tls_verify: bool = Field(default=True, alias="tls-verify")
    serving_health: str | None = Field(default=None, alias="serving-health")
    golden_set: str = Field(alias="golden-set")  # labelled requests (JSON) to score answers
    index_queries: str | None = Field(default=None, alias="index-queries")
    # The vector database the search series asks (else the endpoint's ``POST /search``).
    vector_store: VectorStoreSettings | None = Field(default=None, alias="vector-store")
    feature_store: str | None = Field(default=None, alias="feature-store")  # primary endpoint
    # The registered model and alias the serving nodes resolve (``name@alias``).
    registry_model: str | None = Field(default=None, alias="registry-model")
    protocol: ProtocolSettings = ProtocolSettings()


class AwsRegion(_RegionData):
    """One region of an AWS estate: where its GPU nodes and data tiers are."""

    gpu_groups: list[str] = Field(min_length=1, alias="gpu-groups")  # Auto Scaling groups
    # Route 53 health checks watching this region's serving endpoint (their IDs): polled
    # read-only during a run, as what DNS failover acts on.
    health_checks: list[str] = Field(default=[], alias="health-checks")


class ReplicatedBucket(_Strict):
    """A bucket holding a component's data, and (optionally) its copy in the DR region."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    bucket: str = Field(min_length=3)
    dr_bucket: str | None = Field(default=None, alias="dr-bucket")


class AwsPosture(_Strict):
    """What ``aidrill posture`` checks beyond the regions' own groups and buckets."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    # GPU instances the DR region must launch to take the primary's load (default: the
    # primary's groups' desired capacity), and their types (default: the groups' own).
    failover_instances: int | None = Field(default=None, ge=1, alias="failover-instances")
    gpu_instance_types: list[str] = Field(default=[], alias="gpu-instance-types")
    object_lock: bool = Field(default=False, alias="object-lock")
    mfa_delete: bool = Field(default=False, alias="mfa-delete")
    images: list[str] = []  # ECR repositories of the serving images, replicated to DR
    dns_zone: str | None = Field(default=None, alias="dns-zone")  # Route 53 hosted zone id
    dns_record: str | None = Field(default=None, alias="dns-record")  # the failover name
    online_store_table: str | None = Field(default=None, alias="online-store-table")
    online_store_datastore: str | None = Field(default=None, alias="online-store-datastore")
    # Per tier, the buckets of its data: the offline feature store, index snapshots,
    # training checkpoints, evaluation sets.
    buckets: dict[Tier, list[ReplicatedBucket]] = {}


class AwsEstate(_Serving):
    """What a ``target: aws`` plan drills: accounts, regions, and the endpoints."""

    accounts: list[str] = Field(min_length=1)
    regions: dict[str, AwsRegion] = Field(min_length=1)
    posture: AwsPosture = AwsPosture()


class KubernetesRegion(_RegionData):
    """One region's cluster: its kube context, and where the inference tier runs."""

    context: str = Field(min_length=1)
    namespace: str = Field(default="inference", min_length=1)
    deployment: str = Field(default="inference", min_length=1)  # the inference Deployment
    service: str | None = None  # its Service, where the load calls it through one
    replicas: int | None = Field(default=None, ge=0)  # nominal size (heal scales back to it)
    pod_selector: str = Field(default="app=inference", alias="pod-selector")


class KubernetesEstate(_Serving):
    """What a ``target: kubernetes`` plan drills: one cluster per region, the GPU node
    label and resource, and the endpoints."""

    gpu_label: str = Field(default="nvidia.com/gpu.present=true", alias="gpu-label")
    gpu_resource: str = Field(default="nvidia.com/gpu", alias="gpu-resource")
    regions: dict[str, KubernetesRegion] = Field(min_length=1)


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
    registry_copy_interval: Duration = 5.0  # the model registry's database, copied to DR
    # The protocol the load, probes and pre-flight speak to the lab's nodes: its own
    # (``aidrill``), the OpenAI-compatible API (``openai-chat``, ``openai-completions``,
    # streamed or not) or the Open Inference Protocol (``open-inference``).
    protocol: ProtocolSettings = ProtocolSettings()


class Plan(_Strict):
    # The plan file's folder: paths the plan names (golden set, probe sets, CA bundle)
    # are relative to it. Set by load_plan; the working directory otherwise.
    _base_dir: Path = PrivateAttr(default=Path("."))
    system: str = Field(min_length=1)
    version: int = 1
    target: TargetName = "lab"
    topology: Topology = "active-passive"
    regions: list[Region] = Field(min_length=2, max_length=2)
    slo: ServingSlo
    components: list[Component] = Field(min_length=1)
    cadence: Cadence = Cadence()
    governance: Governance = Governance()
    allow: AllowList = AllowList()
    scope: str | None = None
    exclusions: list[str] = []
    guardrails: Guardrails = Guardrails()
    blast_radius: BlastRadius = BlastRadius()
    lab: LabSettings = LabSettings()
    aws: AwsEstate | None = None
    kubernetes: KubernetesEstate | None = None
    # Settings of kinds of target a plug-in adds (aidrill.kinds), by kind name: the
    # kind's own check_plan reads and checks its section.
    estates: dict[str, dict[str, JsonValue]] = {}
    # Ordered drill suites: name -> experiment files (relative to the plan's folder).
    suites: dict[str, list[str]] = {}

    def path(self, named: str) -> Path:
        """A path the plan names, relative to the plan's own folder."""
        given = Path(named).expanduser()
        return given if given.is_absolute() else self._base_dir / given

    def located_at(self, folder: Path) -> Plan:
        self._base_dir = folder
        return self

    @model_validator(mode="after")
    def _check_regions_and_names(self) -> Plan:
        roles = sorted(region.role for region in self.regions)
        if roles != ["dr", "primary"]:
            raise ValueError("regions: name exactly one primary and one dr region")
        names = [component.name for component in self.components]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"components: duplicate names {duplicates}")
        for suite, files in self.suites.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", suite):
                raise ValueError(f"suites: {suite!r} is not a name (lowercase, digits, - or _)")
            if not files:
                raise ValueError(f"suites.{suite}: name at least one experiment")
        check = target_kind(self.target).check_plan
        problems = check(self) if check is not None else []
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def protocol(self) -> ProtocolSettings:
        """How the target's inference endpoint is asked: its estate's ``protocol`` (a
        plug-in's under ``estates.<kind>.protocol``; the lab's under ``lab``)."""
        estate = getattr(self, self.target, None)
        if isinstance(estate, _Serving | LabSettings):
            return estate.protocol
        section = self.estates.get(self.target, {}).get("protocol")
        return ProtocolSettings.model_validate(section) if section else ProtocolSettings()

    @property
    def primary_region(self) -> str:
        return next(region.name for region in self.regions if region.role == "primary")

    @property
    def dr_region(self) -> str:
        return next(region.name for region in self.regions if region.role == "dr")

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)
