"""The lab's AWS twin: an AWS API on loopback that mirrors the lab, and a reconciler
that applies what happens there to the real lab processes.

Each lab region is an AWS region (the primary us-east-1, the DR region us-west-2) with
a GPU Auto Scaling group whose instances stand for the region's GPU nodes; the lab's
buckets answer at the same endpoint. Every half second the reconciler:

- kills the node of an instance that was stopped or terminated through the API, and
  lets a node the lab boots claim one of the group's running instances (marked
  Unhealthy until then, so ``wait_desired_equals_healthy`` waits for real boots);
- suspends the region's replacements while the group's ``Launch`` is suspended;
- keeps the group's desired capacity at the region's (failover scales the DR region);
- answers ``GetHealthCheckStatus`` of each region's Route 53 health check from the
  region's balancer (a node in rotation: success), as Route 53's checkers would;
- applies the FIS experiments it knows while they run and undoes them when they stop
  or their duration ends: ``aws:ec2:api-insufficient-instance-capacity-error`` (the
  region of the AZs named has no GPU capacity) and ``aws:ssm:send-command`` with the
  ``AWSFIS-Run-Network-Latency`` document (latency toward the artifact store).

moto stores what it cannot run (FIS templates and experiments); the reconciler gives
them effect. The twin is a test double of AWS: what it does not mirror, it refuses.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aidrill._event import ActivityRecord
from aidrill.lab.data._storage import spawn_moto_server
from aidrill.lab.serving._region import Region
from aidrill.lab.twins._aws_router import AwsRouter

if TYPE_CHECKING:
    from chaoslib.types import Experiment


Record = Callable[..., None]
ACCOUNT = "123456789012"
AWS_REGIONS = ("us-east-1", "us-west-2")  # the primary's and the DR region's
_POLL = 0.5
_RESET_ATTEMPTS = 3  # a reset survives a failed call or two (each step is idempotent)
_CALL_ERRORS = (BotoCoreError, ClientError, OSError)
_NOT_RUNNING = {"stopping", "stopped", "shutting-down", "terminated"}
ICE = "aws:ec2:api-insufficient-instance-capacity-error"
LATENCY_DOCUMENT = "AWSFIS-Run-Network-Latency"


def group_name(region: str) -> str:
    return f"aidrill-gpu-{region}"


@dataclass
class _Applied:
    kind: str  # "capacity" | "latency"
    region: str
    until: float


class AwsTwin:
    def __init__(
        self,
        regions: dict[str, Region],
        primary: str,
        dr: str,
        bucket_ports: dict[str, int],
        serving: Callable[[], list[str]],
        throttle: Callable[[str, float], None],
        unthrottle: Callable[[str], None],
        record: Record,
        log_dir: Path,
    ) -> None:
        self.regions = regions
        self.aws_region = {primary: AWS_REGIONS[0], dr: AWS_REGIONS[1]}
        self.lab_region = {aws: lab for lab, aws in self.aws_region.items()}
        self.throttle, self.unthrottle = throttle, unthrottle
        self.record = record
        self.process, self.services_port = spawn_moto_server(
            log_dir / "aws-twin.log", "the AWS twin's server", serialize=True
        )
        self.router = AwsRouter(
            self.services_port,
            bucket_ports,
            lambda: [self.aws_region[name] for name in serving()],
            self._group_activities,
            self._check_healthy,
        )
        self.health_checks: dict[str, str] = {}  # AWS region -> its Route 53 health check id
        self.templates: dict[str, str] = {}
        self.claims: dict[str, str] = {}  # node name -> instance id
        self.applied: dict[str, _Applied] = {}  # FIS experiment id -> what it does
        self._unhealthy: set[str] = set()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], BaseClient] = {}

    def _group_activities(self, group: str) -> list[ActivityRecord] | None:
        """A twin group's history: its lab region's supervisor activities."""
        region = next((r for name, r in self.regions.items() if group_name(name) == group), None)
        # Its launches only: an Auto Scaling group lists no balancer's or node's doings.
        return None if region is None else region.activities(0.0, kinds=("launch",))

    def _check_healthy(self, check: str) -> bool | None:
        """A twin health check's verdict: whether its region's balancer answers its
        health check (a node in rotation, the region not failed); None for a check the
        twin did not create."""
        aws = next((a for a, c in self.health_checks.items() if c == check), None)
        if aws is None:
            return None
        region = self.regions[self.lab_region[aws]]
        return not region.state.failed and region.healthy_count() > 0

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        threading.Thread(
            target=self.router.server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name="aws-router",
        ).start()
        for lab, aws in self.aws_region.items():
            self._create_group(lab, aws)
            self._create_health_check(lab, aws)
        self._create_templates()
        self.reconcile()
        threading.Thread(target=self._loop, daemon=True, name="aws-twin").start()

    def stop(self) -> None:
        self._stopping.set()
        self.router.server.shutdown()
        self.process.kill()

    def client(self, service: str, region: str = AWS_REGIONS[0]) -> BaseClient:
        """One client per service and region, made once (making one costs tens of ms)."""
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._make_client(service, region)
        return self._clients[key]

    def _make_client(self, service: str, region: str) -> BaseClient:
        return boto3.client(
            service,
            endpoint_url=f"http://127.0.0.1:{self.services_port}",
            region_name=region,
            aws_access_key_id="lab",
            aws_secret_access_key="lab",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=10),
        )

    def env(self) -> dict[str, str]:
        """The environment that points AWS clients (and aidrill) at the twin."""
        return {
            "AWS_ENDPOINT_URL": self.router.url,
            "AWS_ACCESS_KEY_ID": "lab",
            "AWS_SECRET_ACCESS_KEY": "lab",
            "AWS_REGION": AWS_REGIONS[0],
            "AWS_DEFAULT_REGION": AWS_REGIONS[0],
            "AIDRILL_FIS_NO_GPU_CAPACITY": self.templates.get("no-gpu-capacity", ""),
            "AIDRILL_FIS_STORAGE_LATENCY": self.templates.get("storage-latency", ""),
        }

    # -- set-up ---------------------------------------------------------------------
    def _create_group(self, lab: str, aws: str) -> None:
        ec2, asg = self.client("ec2", aws), self.client("autoscaling", aws)
        ec2.create_launch_template(
            LaunchTemplateName=group_name(lab),
            LaunchTemplateData={
                "ImageId": "ami-12c6146b",
                "InstanceType": "g5.xlarge",
                "TagSpecifications": [
                    {"ResourceType": "instance", "Tags": [{"Key": "aidrill:gpu", "Value": "true"}]}
                ],
            },
        )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=group_name(lab),
            LaunchTemplate={"LaunchTemplateName": group_name(lab)},
            MinSize=0,
            MaxSize=16,
            DesiredCapacity=self.regions[lab].state.desired,
            AvailabilityZones=[f"{aws}a", f"{aws}b"],
            Tags=[
                {"Key": "aidrill:region", "Value": lab, "PropagateAtLaunch": True},
                {"Key": "aidrill:gpu", "Value": "true", "PropagateAtLaunch": True},
            ],
        )

    def _create_health_check(self, lab: str, aws: str) -> None:
        """A Route 53 health check of the region's balancer, as DNS failover uses; its
        status is answered from the lab (moto reports every check healthy)."""
        reply = self.client("route53").create_health_check(
            CallerReference=f"aidrill-twin-{aws}-{time.time_ns()}",
            HealthCheckConfig={
                "IPAddress": "127.0.0.1",
                "Port": self.regions[lab].port,
                "Type": "HTTP",
                "ResourcePath": "/healthz",
                "RequestInterval": 10,
                "FailureThreshold": 1,
            },
        )
        self.health_checks[aws] = str(reply["HealthCheck"]["Id"])

    def _create_templates(self) -> None:
        """The FIS experiment templates a team would keep for its drills (in the
        primary's region; the twin reads the AZs they name to find their region)."""
        fis = self.client("fis")
        primary, dr = self.aws_region.values()
        role = f"arn:aws:iam::{ACCOUNT}:role/aidrill-fis"
        templates: dict[str, dict[str, Any]] = {
            "no-gpu-capacity": {
                "targets": {"gpu-roles": {"resourceType": "aws:iam:role", "selectionMode": "ALL",
                                          "resourceArns": [f"arn:aws:iam::{ACCOUNT}:role/gpu"]}},
                "actions": {"no-capacity": {"actionId": ICE, "targets": {"Roles": "gpu-roles"},
                                            "parameters": {"availabilityZoneIdentifiers":
                                                           f"{dr}a,{dr}b", "duration": "PT10M",
                                                           "percentage": "100"}}},
            },
            "storage-latency": {
                "targets": {"gpu": {"resourceType": "aws:ec2:instance", "selectionMode": "ALL",
                                    "resourceTags": {"aidrill:region":
                                                     self.lab_region[primary]}}},
                "actions": {"latency": {"actionId": "aws:ssm:send-command",
                                        "targets": {"Instances": "gpu"},
                                        "parameters": {"documentArn":
                                                       f"arn:aws:ssm:{primary}::document/"
                                                       f"{LATENCY_DOCUMENT}",
                                                       "documentParameters": json.dumps(
                                                           {"DelayMilliseconds": "200",
                                                            "DurationSeconds": "60",
                                                            "Sources": "S3"}),
                                                       "duration": "PT1M"}}},
            },
        }  # fmt: skip
        for name, body in templates.items():
            reply = fis.create_experiment_template(
                clientToken=name,
                description=f"aidrill lab twin: {name}",
                roleArn=role,
                stopConditions=[{"source": "none"}],
                tags={"aidrill:template": name},
                **body,
            )
            self.templates[name] = reply["experimentTemplate"]["id"]

    # -- the reconciler ---------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.wait(_POLL):
            try:
                self.reconcile()
            except _CALL_ERRORS as exc:
                self.record("aws_twin_error", error=repr(exc)[:300])
            except Exception as exc:  # the loop must outlive any one bad round
                traceback.print_exc()
                self.record("aws_twin_error", error=repr(exc)[:300])

    def reconcile(self) -> None:
        with self._lock:
            for lab, aws in self.aws_region.items():
                self._reconcile_region(self.regions[lab], aws)
            self._reconcile_experiments()

    def _reconcile_region(self, region: Region, aws: str) -> None:
        asg, ec2 = self.client("autoscaling", aws), self.client("ec2", aws)
        info = self._group(asg, region.name)
        suspended = {p["ProcessName"] for p in info.get("SuspendedProcesses") or []}
        region.set_launch_suspended("Launch" in suspended)
        if info["DesiredCapacity"] != region.state.desired:
            asg.set_desired_capacity(
                AutoScalingGroupName=group_name(region.name),
                DesiredCapacity=region.state.desired,
                HonorCooldown=False,
            )
            # A scale-in terminates members: read the group again, or the round below
            # would mark instances that left it (moto answers that with a bare 500).
            info = self._group(asg, region.name)
        members = [i["InstanceId"] for i in info["Instances"] if i["LifecycleState"] == "InService"]
        claimed = {iid for node, iid in self.claims.items() if node.startswith(region.name)}
        states = self._states(ec2, sorted(set(members) | claimed))
        nodes = {n["name"]: n for n in region.snapshot()["nodes"]}
        for node, iid in list(self.claims.items()):
            if not node.startswith(f"{region.name}-"):
                continue
            state = states.get(iid, "terminated")
            if state in _NOT_RUNNING:
                region.kill_node(node, f"its EC2 instance {iid} is {state}")
                del self.claims[node]
            elif node not in nodes or not nodes[node]["alive"]:
                del self.claims[node]
        taken = set(self.claims.values())
        spare = [i for i in members if i not in taken and states.get(i) == "running"]
        for name, snapshot in sorted(nodes.items()):
            # A node the lab booted claims a running instance of its group; the group
            # launches one per desired slot, so a booted node waits at most a round.
            if snapshot["alive"] and snapshot["healthy"] and name not in self.claims and spare:
                iid = spare.pop(0)
                self.claims[name] = iid
                self._health(asg, iid, healthy=True)
        taken = set(self.claims.values())
        for iid in members:
            if iid not in taken:
                self._health(asg, iid, healthy=False)

    @staticmethod
    def _group(asg: BaseClient, lab: str) -> dict[str, Any]:
        reply = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name(lab)])
        group: dict[str, Any] = reply["AutoScalingGroups"][0]
        return group

    def _states(self, ec2: BaseClient, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        reply = ec2.describe_instances(InstanceIds=ids)
        return {
            i["InstanceId"]: i["State"]["Name"]
            for reservation in reply["Reservations"]
            for i in reservation["Instances"]
        }

    def _health(self, asg: BaseClient, iid: str, healthy: bool) -> None:
        if healthy == (iid not in self._unhealthy):
            return
        asg.set_instance_health(InstanceId=iid, HealthStatus="Healthy" if healthy else "Unhealthy")
        if healthy:
            self._unhealthy.discard(iid)
        else:
            self._unhealthy.add(iid)

    # -- FIS ------------------------------------------------------------------------
    def _reconcile_experiments(self) -> None:
        now = time.time()
        running: set[str] = set()
        for aws in self.aws_region.values():
            fis = self.client("fis", aws)
            for experiment in fis.list_experiments(maxResults=100).get("experiments", []):
                status = (experiment.get("state") or {}).get("status")
                if status not in ("pending", "initiating", "running"):
                    continue
                running.add(experiment["id"])
                if experiment["id"] not in self.applied:
                    self._apply(fis, experiment, now)
        for eid, applied in list(self.applied.items()):
            if eid not in running or now >= applied.until:
                self._undo(eid, applied)

    def _apply(self, fis: BaseClient, experiment: Experiment, now: float) -> None:
        template = fis.get_experiment_template(id=experiment["experimentTemplateId"])
        for action in template["experimentTemplate"].get("actions", {}).values():
            parameters = action.get("parameters") or {}
            seconds = _iso_seconds(parameters.get("duration"), 600.0)
            if action.get("actionId") == ICE:
                zones = str(parameters.get("availabilityZoneIdentifiers", "")).split(",")
                for region in {self._lab_region_of_zone(z) for z in zones} - {None}:
                    assert region is not None
                    self.regions[region].set_capacity_exhausted(True)
                    self.applied[experiment["id"]] = _Applied("capacity", region, now + seconds)
            elif str(parameters.get("documentArn", "")).endswith(LATENCY_DOCUMENT):
                document = json.loads(parameters.get("documentParameters") or "{}")
                latency = float(document.get("DelayMilliseconds", 0)) / 1000
                region = self._lab_region_of_targets(template["experimentTemplate"])
                seconds = float(document.get("DurationSeconds", seconds))
                self.throttle(region, latency)
                self.applied[experiment["id"]] = _Applied("latency", region, now + seconds)
        self.record("aws_fis_experiment_applied", experiment=experiment["id"],
                    template=experiment["experimentTemplateId"])  # fmt: skip

    def _undo(self, eid: str, applied: _Applied) -> None:
        if applied.kind == "capacity":
            self.regions[applied.region].set_capacity_exhausted(False)
        else:
            self.unthrottle(applied.region)
        del self.applied[eid]
        self.record("aws_fis_experiment_ended", experiment=eid, region=applied.region)

    def _lab_region_of_zone(self, zone: str) -> str | None:
        zone = zone.strip()
        return next((lab for aws, lab in self.lab_region.items() if zone.startswith(aws)), None)

    def _lab_region_of_targets(self, template: dict[str, Any]) -> str:
        for target in (template.get("targets") or {}).values():
            region = (target.get("resourceTags") or {}).get("aidrill:region")
            if region in self.regions:
                return str(region)
        return next(iter(self.regions))

    # -- nominal and reset ------------------------------------------------------------
    def problems(self) -> list[tuple[str, str]]:
        """What the twin shows off nominal, each tagged with the lab region it is about."""
        found = []
        for applied in self.applied.values():
            found.append((applied.region, f"an FIS experiment ({applied.kind}) runs against "
                                          f"{applied.region}"))  # fmt: skip
        for lab, aws in self.aws_region.items():
            try:
                info = self.client("autoscaling", aws).describe_auto_scaling_groups(
                    AutoScalingGroupNames=[group_name(lab)]
                )["AutoScalingGroups"][0]
            except _CALL_ERRORS as exc:
                found.append((lab, f"the AWS twin does not answer for {lab}: {exc}"))
                continue
            suspended = sorted(p["ProcessName"] for p in info.get("SuspendedProcesses") or [])
            if suspended:
                found.append((lab, f"{group_name(lab)} has suspended processes {suspended}"))
        return found

    def reset(self) -> None:
        """Undo what was done through the API: stop the FIS experiments, resume every
        group's processes, and start the GPU instances that were stopped (under the
        reconciler's lock, so that no round of it interleaves with the reset)."""
        for attempt in range(_RESET_ATTEMPTS):
            try:
                with self._lock:
                    self._undo_api_changes()
                self.reconcile()
                return
            except _CALL_ERRORS as exc:
                self.record("aws_twin_error", error=repr(exc)[:300], during="reset")
                if attempt == _RESET_ATTEMPTS - 1:
                    raise
                time.sleep(_POLL)

    def _undo_api_changes(self) -> None:
        for aws in self.aws_region.values():
            fis = self.client("fis", aws)
            for experiment in fis.list_experiments(maxResults=100).get("experiments", []):
                if (experiment.get("state") or {}).get("status") in ("pending", "running"):
                    fis.stop_experiment(id=experiment["id"])
        for lab, aws in self.aws_region.items():
            asg, ec2 = self.client("autoscaling", aws), self.client("ec2", aws)
            asg.resume_processes(AutoScalingGroupName=group_name(lab))
            stopped = ec2.describe_instances(Filters=[
                {"Name": "tag:aidrill:region", "Values": [lab]},
                {"Name": "instance-state-name", "Values": ["stopped", "stopping"]}])  # fmt: skip
            ids = [i["InstanceId"] for r in stopped["Reservations"] for i in r["Instances"]]
            if ids:
                ec2.start_instances(InstanceIds=ids)


def _iso_seconds(value: Any, default: float) -> float:
    """``PT2M``, ``PT90S`` or ``PT1H`` in seconds."""
    text = str(value or "").upper()
    if not text.startswith("PT"):
        return default
    total, number = 0.0, ""
    for char in text[2:]:
        if char.isdigit() or char == ".":
            number += char
        elif number:
            total += float(number) * {"H": 3600, "M": 60, "S": 1}.get(char, 0)
            number = ""
    return total or default
