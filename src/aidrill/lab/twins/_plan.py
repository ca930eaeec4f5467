"""The plans for drilling the lab through its AWS and Kubernetes twins: the lab's own
plan, with the twin's regions, identities and endpoints (``aidrill lab status --env``
points ``AIDRILL_PLAN`` at the AWS one; ``--env kubernetes`` at the other)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from aidrill.lab._records import LabJson
from aidrill.lab.twins._aws import ACCOUNT, AwsTwin, group_name
from aidrill.plan import Plan

if TYPE_CHECKING:
    from aidrill.lab.twins._k8s import KubeTwin

TWIN_PLAN = "drplan.aws.yaml"


def _lab_plan_document(plan: Plan) -> dict[str, Any]:
    """The lab's plan as a document to amend; without its suites, whose paths are the
    repository's, not the state directory's."""
    document = plan.model_dump(mode="json", by_alias=True, exclude_none=True)
    document.pop("suites", None)
    return document


def _data_endpoints(info: LabJson, region: str) -> dict[str, str]:
    """Where one lab region's data tiers answer, as an estate's region names them."""
    local = "127.0.0.1"
    return {
        "artifact-bucket": info["buckets"][region],
        "feature-store": f"redis://{local}:{info['feature_region_ports'][region]}",
        "vector-index": f"http://{local}:{info['index_ports'][region]}",
        "pipelines": f"http://{local}:{info['pipelines_port']}/jobs",
        "model-registry": f"http://{local}:{info['registry_ports'][region]}",
    }


def write_twin_plan(path: Path, plan: Plan, info: LabJson, twin: AwsTwin) -> None:
    document = _lab_plan_document(plan)
    aws = twin.aws_region
    primary, dr = aws[plan.primary_region], aws[plan.dr_region]
    local = "127.0.0.1"
    regions = {}
    for lab_region, aws_region in aws.items():
        regions[aws_region] = {
            "gpu-groups": [group_name(lab_region)],
            "health-checks": [twin.health_checks[aws_region]],
            **_data_endpoints(info, lab_region),
        }
    document.update(
        {
            "system": f"{plan.system}, drilled through its AWS twin",
            "target": "aws",
            "regions": [{"name": primary, "role": "primary"}, {"name": dr, "role": "dr"}],
            "allow": {
                "targets": ["aws"],
                "aws_accounts": [ACCOUNT],
                "aws_regions": [primary, dr],
            },
            "aws": {
                "accounts": [ACCOUNT],
                "inference": f"http://{local}:{info['router_port']}",
                "serving-health": f"{twin.router.url}/aidrill-twin/serving",
                "golden-set": info["golden_set"],
                "index-queries": info["index_queries"],
                "feature-store": f"redis://{local}:{info['features_port']}",
                "registry-model": info["registry_model"],
                "regions": regions,
                # What `aidrill posture` checks: failover needs the primary's full size.
                "posture": {"failover-instances": plan.lab.nodes_per_region},
            },
        }
    )
    header = (
        "# Written by `aidrill lab up`: the lab's plan for drilling it through its AWS twin.\n"
        "# Use it with the environment `aidrill lab status --env` prints.\n"
    )
    _write(path, header + yaml.safe_dump(document, sort_keys=False))


KUBE_PLAN = "drplan.kubernetes.yaml"


def write_kube_plan(path: Path, plan: Plan, info: LabJson, kube: KubeTwin) -> None:
    """The lab's plan for drilling it through its Kubernetes twin: one context per
    region, the inference Deployment, and the same outside endpoints as the lab."""
    from aidrill.lab.twins._k8s import DEPLOYMENT, NAMESPACE

    document = _lab_plan_document(plan)
    local = "127.0.0.1"
    contexts = kube.info()["contexts"]
    regions: dict[str, dict[str, str | int]] = {}
    for region in (plan.primary_region, plan.dr_region):
        regions[region] = {
            "context": contexts[region],
            "namespace": NAMESPACE,
            "deployment": DEPLOYMENT,
            "service": DEPLOYMENT,
            **_data_endpoints(info, region),
        }
        if region == plan.primary_region:  # the DR region's size follows failover
            regions[region]["replicas"] = plan.lab.nodes_per_region
    document.update(
        {
            "system": f"{plan.system}, drilled through its Kubernetes twin",
            "target": "kubernetes",
            "allow": {
                "targets": ["kubernetes"],
                "kubernetes_contexts": sorted(contexts.values()),
                "kubernetes_namespaces": [NAMESPACE],
            },
            "kubernetes": {
                "inference": f"http://{local}:{info['router_port']}",
                "serving-health": f"http://{local}:{info['router_port']}/healthz",
                "golden-set": info["golden_set"],
                "index-queries": info["index_queries"],
                "feature-store": f"redis://{local}:{info['features_port']}",
                "registry-model": info["registry_model"],
                "regions": regions,
            },
        }
    )
    header = (
        "# Written by `aidrill lab up`: the lab's plan for drilling it through its\n"
        "# Kubernetes twin. Use it with the environment `aidrill lab status --env` prints.\n"
    )
    _write(path, header + yaml.safe_dump(document, sort_keys=False))


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
