"""What every target reached through its public APIs shares: the endpoints the plan
names, and whether the global endpoint and the data tiers answer as nominal."""

from __future__ import annotations

import redis

from aidrill._http import HttpClient
from aidrill.plan import AwsEstate, KubernetesEstate, Plan
from aidrill.targets._endpoints import (
    Address,
    ArtifactStore,
    Endpoints,
    http_settings,
    vector_store_settings,
)
from aidrill.targets._outside import join, redis_at
from aidrill.targets._registry_watch import RegistryWatch

Estate = AwsEstate | KubernetesEstate


def estate_endpoints(plan: Plan, estate: Estate) -> Endpoints:
    """Where the load goes and each tier is probed, as the plan's estate names them."""
    return Endpoints(
        inference=estate.inference,
        golden_set=plan.path(estate.golden_set),
        primary=plan.primary_region,
        dr=plan.dr_region,
        index_queries=plan.path(estate.index_queries) if estate.index_queries else None,
        vector_store=vector_store_settings(estate.vector_store),
        serving_health=estate.serving_health,
        feature_store=Address.of(estate.feature_store, 6379) if estate.feature_store else None,
        feature_regions={
            name: Address.of(r.feature_store, 6379)
            for name, r in estate.regions.items()
            if r.feature_store
        },
        index={name: r.vector_index for name, r in estate.regions.items() if r.vector_index},
        pipelines=next((r.pipelines for r in estate.regions.values() if r.pipelines), None),
        artifacts={
            name: ArtifactStore(
                r.artifact_bucket, region=name, key=r.artifact_key, checksum=r.artifact_checksum
            )
            for name, r in estate.regions.items()
            if r.artifact_bucket
        },
        registry={name: r.model_registry for name, r in estate.regions.items() if r.model_registry},
        registry_model=estate.registry_model,
        http=http_settings(plan, estate),
        protocol=estate.protocol,
    )


def serving_problems(plan: Plan, estate: Estate, http: HttpClient) -> list[str]:
    """The global endpoint's health check answers, and serves from the primary
    (active-passive)."""
    if estate.serving_health is None:
        return []
    status, body = http.json("GET", estate.serving_health, timeout=3.0)
    serving = (body or {}).get("serving") if isinstance(body, dict) else None
    if not serving:
        return [f"the global endpoint's health check does not answer ({status})"]
    if plan.topology == "active-passive" and serving != [plan.primary_region]:
        return [f"the global endpoint serves {serving}, not the primary"]
    return []


def data_problems(
    endpoints: Endpoints, http: HttpClient, tiers: frozenset[str] | None = None
) -> list[str]:
    """Each data tier the plan names (of ``tiers``, those a drill touches, when given)
    answers from outside."""

    def wanted(*names: str) -> bool:
        return tiers is None or any(name in tiers for name in names)

    found = []
    if endpoints.feature_store is not None and wanted("feature-store"):
        try:
            redis_at(endpoints.feature_store).ping()
        except (redis.RedisError, OSError) as exc:
            found.append(f"the feature store's primary endpoint does not answer: {exc}")
    for region, base in endpoints.index.items() if wanted("vector-index") else ():
        if http.json("POST", join(base, "/fetch"), {"ids": []})[0] != 200:
            found.append(f"the vector index of {region} does not serve")
    if endpoints.pipelines is not None and wanted("training", "evaluation"):
        status, jobs = http.json("GET", endpoints.pipelines)
        if status != 200:
            found.append("the pipelines' status does not answer")
        for job, state in (jobs or {}).items() if status == 200 else ():
            if not state.get("running"):
                found.append(f"the {job} pipeline is not running")
    if endpoints.registry_model is not None and wanted("model-registry"):
        watch = RegistryWatch(
            endpoints.registry, endpoints.primary, endpoints.registry_model, "", http
        )
        for region in endpoints.registry:
            status, version = watch.resolve(region)
            if version is None:
                found.append(
                    f"the model registry of {region} does not resolve "
                    f"{endpoints.registry_model} ({status})"
                )
    return found
