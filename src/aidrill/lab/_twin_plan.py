"""The plan for drilling the lab through its AWS twin: the lab's own plan, with the
twin's regions, account and endpoints, written where ``aidrill lab status --env``
points ``AIDRILL_PLAN``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aidrill.lab._aws_twin import ACCOUNT, AwsTwin, group_name
from aidrill.plan import Plan

TWIN_PLAN = "drplan.aws.yaml"


def write_twin_plan(path: Path, plan: Plan, info: dict[str, Any], twin: AwsTwin) -> None:
    document = plan.model_dump(mode="json", by_alias=True, exclude_none=True)
    aws = twin.aws_region
    primary, dr = aws[plan.primary_region], aws[plan.dr_region]
    local = "127.0.0.1"
    regions = {}
    for lab_region, aws_region in aws.items():
        regions[aws_region] = {
            "gpu-groups": [group_name(lab_region)],
            "artifact-bucket": info["buckets"][lab_region],
            "feature-store": f"redis://{local}:{info['feature_region_ports'][lab_region]}",
            "vector-index": f"http://{local}:{info['index_ports'][lab_region]}",
            "pipelines": f"http://{local}:{info['pipelines_port']}/jobs",
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
                "regions": regions,
            },
        }
    )
    header = (
        "# Written by `aidrill lab up`: the lab's plan for drilling it through its AWS twin.\n"
        "# Use it with the environment `aidrill lab status --env` prints.\n"
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
