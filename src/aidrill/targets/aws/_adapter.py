"""An AWS estate as a target, through its public APIs and the plan's endpoints only.

Identity comes from STS; every account and region a run touches must be in the plan's
allow-list. Nominal means: each GPU Auto Scaling group has as many healthy instances
as it wants, no group has suspended processes, no FIS experiment runs, the global
endpoint serves from the primary (active-passive), and every data tier answers.
Boto3 honours ``AWS_ENDPOINT_URL`` and the usual credential chain, so the same code
drills a real account and the lab's AWS twin.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aidrill._event import Event
from aidrill._http import HttpClient
from aidrill._json import Configuration
from aidrill.errors import CloudError, ProbeSetError, RefusedError
from aidrill.experiment import driver_region
from aidrill.plan import AwsEstate, Plan
from aidrill.probes.sets import CheckOutcome
from aidrill.targets._endpoints import Endpoints
from aidrill.targets._estate import data_problems, estate_endpoints, serving_problems
from aidrill.targets._target import (
    Activity,
    Admission,
    Heal,
    LeftFault,
    Resolved,
    limit_refusals,
    wait_for_nothing_off,
)
from aidrill.targets.aws._described import Group, Instance
from aidrill.targets.aws._errors import guarded

if TYPE_CHECKING:
    from chaoslib.types import Action, Experiment


AwsError = (BotoCoreError, ClientError, CloudError, OSError)
# An Auto Scaling activity's StatusCode, in the words of every target's activities.
_STATUS = {"Successful": "succeeded", "Failed": "failed", "Cancelled": "cancelled"}
_RUNNING_FIS = ("pending", "initiating", "running")
_HEALTH_INTERVAL = 1.0  # an Auto Scaling group updates its health status no faster
_ROUTE53_REGION = "us-east-1"  # Route 53 is global; its API answers there
_ROUTE53_HEALTHY_SHARE = 0.18


class AwsTarget:
    kind = "aws"

    def __init__(self, plan: Plan) -> None:
        if plan.aws is None:
            raise RefusedError("the plan names no AWS estate (an aws: section)")
        self.plan = plan
        self.estate: AwsEstate = plan.aws
        self._clients: dict[tuple[str, str], BaseClient] = {}
        # A session of its own: credentials are looked up for this target, not cached
        # from whatever the process's default session found first.
        self._session = boto3.Session()
        self.tiers: frozenset[str] | None = None  # the data tiers this run's drill touches

    def focus(self, tiers: frozenset[str]) -> None:
        self.tiers = tiers

    def client(self, service: str, region: str | None = None) -> BaseClient:
        """One client per service and region (waits poll through them many times); its
        failures are CloudError, one line each."""
        key = (service, region or self.plan.primary_region)
        if key not in self._clients:
            self._clients[key] = guarded(self.raw_client(service, key[1]), service, key[1])
        return self._clients[key]

    def raw_client(self, service: str, region: str) -> BaseClient:
        """A plain boto3 client, for callers that read botocore's errors themselves."""
        return self._session.client(
            service,
            region_name=region,
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=15
            ),
        )

    # -- identity and the allow-list ------------------------------------------------------
    def account(self) -> str:
        """The account the credentials belong to (STS); CloudError when there are none,
        they are refused, or the endpoint does not answer."""
        return str(self.client("sts").get_caller_identity()["Account"])

    def allow_refusals(self, account: str, regions: set[str]) -> list[str]:
        """Every way the account and the regions an action acts in fall outside the
        plan's allow-list."""
        allow = self.plan.allow
        found = []
        if account not in allow.aws_accounts or account not in self.estate.accounts:
            found.append(
                f"AWS account {account} is not in the plan's allow-list "
                f"(allow.aws_accounts: {', '.join(allow.aws_accounts) or 'none'})"
            )
        refused = sorted(r for r in regions if r not in allow.aws_regions)
        if refused:
            found.append(
                f"AWS region {', '.join(refused)} is not in the plan's allow-list "
                f"(allow.aws_regions: {', '.join(allow.aws_regions) or 'none'})"
            )
        return found

    def check_allowed(self, regions: set[str]) -> None:
        """Refuse (before any write) an account or region the plan does not allow."""
        refusals = self.allow_refusals(self.account(), regions)
        if refusals:
            raise RefusedError("; ".join(refusals))

    # -- nominal --------------------------------------------------------------------
    def problems(self) -> list[str]:
        found: list[str] = []
        for region in self.plan.regions:
            wanted_min = (
                1 if region.role == "primary" or self.plan.topology == "active-active" else 0
            )
            for group in self.estate.regions[region.name].gpu_groups:
                found += self._group_problems(region.name, group, wanted_min)
            found += self._fis_problems(region.name)
        endpoints = self.endpoints()
        http = HttpClient(endpoints.http)
        found += serving_problems(self.plan, self.estate, http)
        found += data_problems(endpoints, http, self.tiers)
        return found

    def _group_problems(self, region: str, group: str, wanted_min: int) -> list[str]:
        try:
            reply = self.client("autoscaling", region).describe_auto_scaling_groups(
                AutoScalingGroupNames=[group]
            )
        except AwsError as exc:
            return [f"{group} ({region}) cannot be described: {exc}"]
        if not reply["AutoScalingGroups"]:
            return [f"{group} ({region}) does not exist"]
        info = Group.from_api(reply["AutoScalingGroups"][0])
        healthy = sum(1 for m in info.members if m.serving)
        found = []
        if info.desired < wanted_min:
            found.append(f"{group} ({region}) wants {info.desired} instances")
        if healthy != info.desired:
            found.append(f"{group} ({region}): {healthy} of {info.desired} instances healthy")
        if info.suspended:
            found.append(f"{group} ({region}) has suspended processes {list(info.suspended)}")
        return found

    def _fis_problems(self, region: str) -> list[str]:
        try:
            experiments = self.client("fis", region).list_experiments(maxResults=100)
        except AwsError:
            return []  # an account without FIS access runs none we could have started
        return [
            f"FIS experiment {e['id']} is running in {region}"
            for e in experiments.get("experiments", [])
            if (e.get("state") or {}).get("status") in _RUNNING_FIS
        ]

    def wait_nominal(self) -> list[str]:
        return wait_for_nothing_off(self.problems)

    def heal(self) -> Heal:
        """Resume every GPU group's processes, stop running FIS experiments and start
        stopped GPU instances; then wait (bounded) for nominal."""
        started = time.monotonic()
        before = self.problems()
        for region in self.plan.regions:
            for group in self.estate.regions[region.name].gpu_groups:
                self._heal_group(region.name, group)
            fis = self.client("fis", region.name)
            for experiment in fis.list_experiments(maxResults=100).get("experiments", []):
                if (experiment.get("state") or {}).get("status") in _RUNNING_FIS:
                    fis.stop_experiment(id=experiment["id"])
        after = self.wait_nominal()
        return Heal(before, after, [], time.monotonic() - started)

    def _heal_group(self, region: str, group: str) -> None:
        asg, ec2 = self.client("autoscaling", region), self.client("ec2", region)
        asg.resume_processes(AutoScalingGroupName=group)
        info = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        groups = [Group.from_api(g) for g in info["AutoScalingGroups"]]
        ids = [m.id for g in groups for m in g.members]
        if not ids:
            return
        states = ec2.describe_instances(InstanceIds=ids)
        stopped = [
            i.id
            for r in states["Reservations"]
            for i in map(Instance.from_api, r["Instances"])
            if i.state in ("stopped", "stopping")
        ]
        if stopped:
            ec2.start_instances(InstanceIds=stopped)

    # -- where things are -------------------------------------------------------------
    def endpoints(self) -> Endpoints:
        return replace(
            estate_endpoints(self.plan, self.estate),
            health_signals=self.health_signals,
            health_interval=_HEALTH_INTERVAL,
        )

    def health_signals(self) -> dict[str, bool]:
        """What the plan's GPU Auto Scaling groups claim of each instance (read-only
        ``DescribeAutoScalingGroups``, one call per region): healthy while it is
        ``InService`` and ``Healthy``, as the group's own health check decides; an
        instance gone from its group is no longer a signal. And each Route 53 health
        check the plan names per region (``GetHealthCheckStatus``)."""
        signals: dict[str, bool] = {}
        for region, estate in self.estate.regions.items():
            for check in estate.health_checks:
                signals[f"route 53 health check {check} ({region})"] = self._check_healthy(check)
            pages = (
                self.client("autoscaling", region)
                .get_paginator("describe_auto_scaling_groups")
                .paginate(AutoScalingGroupNames=list(estate.gpu_groups))
            )
            for page in pages:
                for group in map(Group.from_api, page.get("AutoScalingGroups") or []):
                    for member in group.members:
                        signals[f"{group.name} {member.id}"] = member.serving
        return signals

    def _check_healthy(self, check: str) -> bool:
        """Route 53's own rule: a health check is healthy while more than 18 % of its
        checkers' latest observations report success."""
        reply = self.client("route53", _ROUTE53_REGION).get_health_check_status(HealthCheckId=check)
        observations = reply.get("HealthCheckObservations") or []
        passing = sum(
            str((o.get("StatusReport") or {}).get("Status", "")).startswith("Success")
            for o in observations
        )
        return bool(observations) and passing / len(observations) > _ROUTE53_HEALTHY_SHARE

    def ground_truth(self, since: float) -> list[Event]:
        return []  # a cloud keeps no record of what really happened for aidrill

    def faults_left_behind(self) -> list[LeftFault]:
        return []  # an account keeps no fault ledger for aidrill: rollbacks undo each fault

    def clear_faults(self) -> list[LeftFault]:
        return []

    def activities(self, since: float) -> list[Activity]:
        """The plan's Auto Scaling groups' activities since ``since`` (read-only
        ``DescribeScalingActivities``): launches, terminations, and why one failed."""
        found: list[Activity] = []
        for region, estate in self.estate.regions.items():
            for group in estate.gpu_groups:
                try:
                    pages = (
                        self.client("autoscaling", region)
                        .get_paginator("describe_scaling_activities")
                        .paginate(AutoScalingGroupName=group, PaginationConfig={"MaxItems": 200})
                    )
                    entries = [a for page in pages for a in page.get("Activities", [])]
                except AwsError as exc:
                    found.append(Activity(time.time(), f"auto scaling group {group}",
                                          "describe its activities", "unreadable", region,
                                          str(exc)))  # fmt: skip
                    continue
                for entry in entries:
                    started = entry.get("StartTime")
                    at = started.timestamp() if started is not None else None
                    if at is None or at < since:
                        continue
                    status = _STATUS.get(str(entry.get("StatusCode")), "started")
                    what = str(entry.get("Description") or "scaling activity")
                    found.append(Activity(
                        at, f"auto scaling group {group}", what,
                        status, region,
                        str(entry.get("StatusMessage") or entry.get("Cause") or ""),
                        # The group acting on the loss: its activity's start.
                        "detect" if status in ("started", "succeeded") else None,
                    ))  # fmt: skip
                    ended = entry.get("EndTime")
                    if status == "succeeded" and ended is not None and "launch" in what.lower():
                        # A launch that succeeded ended when its instance was in service:
                        # the replacement capacity exists.
                        found.append(Activity(
                            ended.timestamp(), f"auto scaling group {group}",
                            f"{what}: in service", status, region, "", "provision",
                        ))  # fmt: skip
        return sorted(found, key=lambda a: a.time)

    # -- safety -----------------------------------------------------------------------
    def check_injection(
        self, activity: Action, configuration: Configuration, full_outage: bool
    ) -> None:
        """Again at injection: the account, and the region the action acts in (the
        run's ``aws_region``, as chaostoolkit-aws reads it)."""
        provider = activity.get("provider") or {}
        region = None
        if str(provider.get("module", "")).startswith("chaosaws"):
            region = configuration.get("aws_region") or driver_region({}, provider)
        self.check_allowed({str(region)} if region else set())

    def run_check(self, check: Any) -> CheckOutcome:
        raise ProbeSetError(
            f"check {getattr(check, 'name', check)!r} asks the lab; an AWS probe set uses "
            "inference checks and chaostoolkit-aws probes"
        )

    def resolve(self, experiment: Experiment) -> list[Resolved]:
        from aidrill.targets.aws._resolve import resolve_actions

        return resolve_actions(self, experiment)

    def admit(self, experiment: Experiment) -> Admission:
        """Identity first (STS: no credentials, or no endpoint, stops here with one
        line), then every action resolved with read-only calls, then every refusal."""
        account = self.account()
        resolved = self.resolve(experiment)
        regions = {r.region for r in resolved if r.region}
        refusals = self.allow_refusals(account, regions) + limit_refusals(resolved)
        return Admission(f"AWS account {account}", resolved, refusals)

    def group_size(self, region: str, group: str) -> int:
        reply = self.client("autoscaling", region).describe_auto_scaling_groups(
            AutoScalingGroupNames=[group]
        )
        return sum(Group.from_api(g).in_service for g in reply["AutoScalingGroups"])


__all__ = ["AwsTarget"]
