"""``aidrill posture``: read the estate (read-only, inside the plan's allow-list), check
each component's configuration, and write posture.json and posture.html."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import boto3

from aidrill._redact import redact
from aidrill.errors import RefusedError
from aidrill.plan import STATEFUL_TIERS, Plan
from aidrill.posture import Check, ComponentPosture, Posture, estimate
from aidrill.targets.aws._adapter import AwsTarget
from aidrill.targets.aws.posture._checks import run_checks
from aidrill.targets.aws.posture._reader import Reader


def check_posture(plan: Plan) -> Posture:
    """Every check of the plan's AWS estate. Refused (exit 2) unless the plan drills AWS
    and the caller's account and the plan's regions are in its allow-list."""
    if plan.target != "aws" or plan.aws is None:
        raise RefusedError(
            f"posture reads an AWS estate; this plan's target is {plan.target!r} "
            "(set target: aws and an aws: section)"
        )
    target = AwsTarget(plan)
    account = target.account()  # no credentials, no endpoint: one line, exit 2
    target.check_allowed(set(plan.aws.regions) | {plan.primary_region, plan.dr_region})
    reader = Reader(target, account)
    secrets = _credential_secrets()
    checks = [_redacted(c, secrets) for c in run_checks(plan, reader)]
    components = []
    for component in plan.components:
        mine = [c for c in checks if c.tier == component.tier]
        bound = estimate(component.tier, mine, component.tier in STATEFUL_TIERS)
        components.append(
            ComponentPosture(
                name=component.name,
                tier=component.tier,
                rto_target=component.rto,
                rpo_target=component.rpo,
                estimate=bound,
                checks=[c.id for c in mine],
                failed=[c.id for c in mine if c.status == "fail"],
                unknown=[c.id for c in mine if c.status == "unknown"],
            )
        )
    return Posture(
        account=account,
        checked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        plan_system=plan.system,
        checks=checks,
        components=components,
    )


def _credential_secrets() -> set[str]:
    """The caller's secret key and session token: never in evidence."""
    credentials = boto3.Session().get_credentials()
    if credentials is None:
        return set()
    frozen = credentials.get_frozen_credentials()
    return {v for v in (frozen.secret_key, frozen.token) if v}


def _redacted(check: Check, secrets: set[str]) -> Check:
    evidence = redact(json.loads(json.dumps(check.evidence, default=str)), secrets)
    return dataclasses.replace(check, evidence=evidence)
