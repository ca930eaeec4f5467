"""Any inference endpoint as a kind of target (entry point ``endpoint`` in
``aidrill.targets``): a model server aidrill did not build, reached only through its
API, with faults from the team's own actions (a process, an HTTP call, a script) whose
scope the experiment declares.

Everything this kind needs lives in this folder and its entry point: the plan's
section ``estates.endpoint`` (its model below), the adapter (``_adapter``), and no
driver table (it knows no driver: every fault declares its scope)::

    target: endpoint
    allow: {targets: [endpoint]}
    estates:
      endpoint:
        inference: https://llm.internal.example.com
        golden-set: golden/capitals.json
        health: https://llm.internal.example.com/health   # optional; nominal is 2xx
        protocol: {kind: openai-chat, model: llama-3-8b-instruct, stream: true}
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aidrill.kinds import TargetKind
from aidrill.plan import EnvReference, Plan, ProtocolSettings, VectorStoreSettings
from aidrill.targets import Target


class EndpointEstate(BaseModel):
    """The plan's ``estates.endpoint``: where the load goes and how it asks."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    inference: str = Field(pattern=r"^https?://")
    golden_set: str = Field(alias="golden-set", min_length=1)
    health: str | None = Field(default=None, pattern=r"^https?://")
    headers: dict[str, str | EnvReference] = {}
    ca_bundle: str | None = Field(default=None, alias="ca-bundle")
    tls_verify: bool = Field(default=True, alias="tls-verify")
    protocol: ProtocolSettings = ProtocolSettings()
    # Retrieval: held-out queries with their exact answers, asked of the plan's vector
    # database (the search series, scored by recall@k).
    index_queries: str | None = Field(default=None, alias="index-queries")
    vector_store: VectorStoreSettings | None = Field(default=None, alias="vector-store")


def estate_of(plan: Plan) -> EndpointEstate:
    return EndpointEstate.model_validate(plan.estates.get("endpoint") or {})


def check_plan(plan: Plan) -> list[str]:
    if "endpoint" not in plan.estates:
        return ["target endpoint: add estates.endpoint naming the inference endpoint"]
    try:
        estate_of(plan)
    except ValidationError as exc:
        return [
            f"estates.endpoint.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        ]
    return []


def make_target(plan: Plan, state_dir: Path | None) -> Target:
    from aidrill.targets.endpoint._adapter import EndpointTarget

    return EndpointTarget(plan, estate_of(plan))


KIND = TargetKind(
    name="endpoint",
    target=make_target,
    summary="any inference endpoint, faults from the team's own declared actions",
    check_plan=check_plan,
)
