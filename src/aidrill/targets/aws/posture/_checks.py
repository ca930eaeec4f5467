"""The posture checks, per tier of the plan: each reads the estate (read-only) and says
pass, fail or unknown, with why, and the bound on RTO or RPO it implies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aidrill._json import JsonDocument
from aidrill.plan import AwsEstate, Plan
from aidrill.posture import Check, Outcome
from aidrill.targets.aws.posture import _s3
from aidrill.targets.aws.posture._backup import backup_outcome
from aidrill.targets.aws.posture._capacity import capacity_outcome
from aidrill.targets.aws.posture._reader import Missing, Reader, Unknown

Probe = Callable[[], Outcome]


def run_checks(plan: Plan, reader: Reader) -> list[Check]:
    estate = plan.aws
    assert estate is not None
    checks = _Checks(plan, estate, reader)
    return [checks.run(*spec) for spec in checks.specs()]


class _Checks:
    def __init__(self, plan: Plan, estate: AwsEstate, reader: Reader) -> None:
        self.plan, self.estate, self.reader = plan, estate, reader
        self.posture = estate.posture
        self.primary, self.dr = plan.primary_region, plan.dr_region

    def run(self, check_id: str, tier: str, title: str, probe: Probe) -> Check:
        start = len(self.reader.calls)
        try:
            outcome = probe()
        except Unknown as exc:
            outcome = Outcome("unknown", str(exc))
        except Missing as exc:
            outcome = Outcome("fail", f"not found ({exc.code}): {exc}")
        return Check(
            id=check_id,
            tier=tier,
            title=title,
            status=outcome.status,
            why=outcome.why,
            calls=self.reader.calls[start:],
            evidence=outcome.evidence,
            rpo_bound=outcome.rpo_bound if outcome.status == "pass" else None,
            rpo_bound_unknown=outcome.rpo_bound_unknown,
            rto_not_achievable=outcome.rto_not_achievable,
        )

    def specs(self) -> list[tuple[str, str, str, Probe]]:
        tiers = {c.tier for c in self.plan.components}
        specs: list[tuple[str, str, str, Probe]] = []
        if "model-artifacts" in tiers:
            art = "model-artifacts"
            specs += [
                (f"{art}.versioning", art, "Artifact buckets are versioned", self.versioning),
                (
                    f"{art}.replication",
                    art,
                    "Artifacts replicate to the DR region",
                    self.artifact_replication,
                ),
            ]
            if self.posture.object_lock:
                specs.append(
                    (f"{art}.object-lock", art, "Object lock on artifact buckets", self.object_lock)
                )
            if self.posture.mfa_delete:
                specs.append(
                    (f"{art}.mfa-delete", art, "MFA delete on artifact buckets", self.mfa_delete)
                )
            specs.append(
                (
                    f"{art}.images",
                    art,
                    "Serving images replicate to the DR region (ECR)",
                    self.images,
                )
            )
        if "inference" in tiers:
            inf = "inference"
            specs += [
                (f"{inf}.multi-az", inf, "GPU groups span two or more zones", self.multi_az),
                (
                    f"{inf}.dr-instance-types",
                    inf,
                    "The DR region offers the GPU instance types",
                    self.instance_types,
                ),
                (
                    f"{inf}.dr-group-size",
                    inf,
                    "DR GPU groups may grow to the failover size",
                    self.group_size,
                ),
                (
                    f"{inf}.dr-capacity",
                    inf,
                    "The DR region can launch the failover GPUs",
                    self.capacity,
                ),
                (
                    f"{inf}.dns-failover",
                    inf,
                    "Route 53 failover records with health checks",
                    self.dns_failover,
                ),
            ]
        if "feature-store" in tiers:
            fs = "feature-store"
            specs.append(
                (
                    f"{fs}.online-replication",
                    fs,
                    "The online store is replicated to the DR region",
                    self.online_store,
                )
            )
            if self.posture.online_store_table:
                specs.append(
                    (
                        f"{fs}.point-in-time-recovery",
                        fs,
                        "Point-in-time recovery on the online store's table",
                        self.pitr,
                    )
                )
        for tier in ("feature-store", "vector-index", "training", "evaluation"):
            if tier in tiers:
                specs += [
                    (f"{tier}.bucket-replication", tier,
                     "Its buckets replicate to the DR region", self._buckets_probe(tier)),
                    (f"{tier}.backup", tier, "AWS Backup covers its buckets",
                     self._backup_probe(tier)),
                ]  # fmt: skip
        return specs

    # -- model artifacts ------------------------------------------------------------------
    def _artifact_buckets(self) -> dict[str, str]:
        found = {
            name: region.artifact_bucket
            for name, region in self.estate.regions.items()
            if region.artifact_bucket
        }
        if not found:
            raise Unknown("the plan names no artifact bucket (aws.regions.*.artifact-bucket)")
        return found

    def versioning(self) -> Outcome:
        evidence, off = {}, []
        for region, bucket in self._artifact_buckets().items():
            enabled, reply = _s3.versioning(self.reader, region, bucket)
            evidence[bucket] = reply
            if not enabled:
                off.append(f"{bucket} ({region})")
        if off:
            return Outcome("fail", f"versioning is not enabled on {', '.join(off)}: "
                           "a bad upload or a deletion cannot be undone", evidence)  # fmt: skip
        return Outcome("pass", "versioning is enabled on every artifact bucket", evidence)

    def artifact_replication(self) -> Outcome:
        buckets = self._artifact_buckets()
        if self.primary not in buckets:
            raise Unknown(f"the plan names no artifact bucket for {self.primary}")
        return self._replicated([(buckets[self.primary], buckets.get(self.dr))])

    def object_lock(self) -> Outcome:
        evidence, off = {}, []
        for region, bucket in self._artifact_buckets().items():
            enabled, config = _s3.object_lock(self.reader, region, bucket)
            evidence[bucket] = config
            if not enabled:
                off.append(bucket)
        if off:
            return Outcome("fail", f"object lock is off on {', '.join(off)}", evidence)
        return Outcome("pass", "object lock is on for every artifact bucket", evidence)

    def mfa_delete(self) -> Outcome:
        evidence, off = {}, []
        for region, bucket in self._artifact_buckets().items():
            _, reply = _s3.versioning(self.reader, region, bucket)
            evidence[bucket] = reply
            if reply.get("MFADelete") != "Enabled":
                off.append(bucket)
        if off:
            return Outcome("fail", f"MFA delete is off on {', '.join(off)}", evidence)
        return Outcome("pass", "MFA delete is on for every artifact bucket", evidence)

    def images(self) -> Outcome:
        if not self.posture.images:
            raise Unknown("the plan names no serving image repository (aws.posture.images)")
        reply = self.reader.call("ecr", self.primary, "DescribeRegistry")
        rules = (reply.get("replicationConfiguration") or {}).get("rules", [])
        evidence = {"replicationConfiguration": reply.get("replicationConfiguration")}
        missing = [
            image
            for image in self.posture.images
            if not any(
                any(d.get("region") == self.dr for d in rule.get("destinations", []))
                and _repository_matches(image, rule.get("repositoryFilters") or [])
                for rule in rules
            )
        ]
        if missing:
            return Outcome("fail", f"no ECR replication rule copies {', '.join(missing)} to "
                           f"{self.dr}: the DR region cannot pull the serving image",
                           evidence)  # fmt: skip
        return Outcome("pass", f"ECR replicates {', '.join(self.posture.images)} to {self.dr}",
                       evidence)  # fmt: skip

    # -- inference -----------------------------------------------------------------------
    def _groups(self, region: str) -> list[dict[str, Any]]:
        names = self.estate.regions[region].gpu_groups
        reply = self.reader.call(
            "autoscaling", region, "DescribeAutoScalingGroups", AutoScalingGroupNames=names
        )
        found = reply.get("AutoScalingGroups", [])
        absent = sorted(set(names) - {g["AutoScalingGroupName"] for g in found})
        if absent:
            raise Missing("NoSuchGroup", f"GPU group(s) {', '.join(absent)} in {region}")
        return list(found)

    def multi_az(self) -> Outcome:
        evidence, narrow = {}, []
        for region in self.estate.regions:
            for group in self._groups(region):
                zones = sorted(group.get("AvailabilityZones") or [])
                evidence[group["AutoScalingGroupName"]] = zones
                if len(zones) < 2:
                    narrow.append(f"{group['AutoScalingGroupName']} ({region}: {zones})")
        if narrow:
            return Outcome("fail", f"one zone only: {', '.join(narrow)}; a zone outage takes "
                           "the whole group", evidence)  # fmt: skip
        return Outcome("pass", "every GPU group spans two or more availability zones", evidence)

    def _instance_types(self) -> list[str]:
        if self.posture.gpu_instance_types:
            return list(self.posture.gpu_instance_types)
        found: set[str] = set()
        for group in self._groups(self.primary):
            found |= _group_types(self.reader, self.primary, group)
        if not found:
            raise Unknown("cannot tell the GPU instance types (set aws.posture.gpu-instance-types)")
        return sorted(found)

    def _failover_need(self) -> int:
        if self.posture.failover_instances:
            return self.posture.failover_instances
        return sum(int(g.get("DesiredCapacity", 0)) for g in self._groups(self.primary))

    def instance_types(self) -> Outcome:
        types = self._instance_types()
        reply = self.reader.call(
            "ec2", self.dr, "DescribeInstanceTypeOfferings", LocationType="region",
            Filters=[{"Name": "instance-type", "Values": types}],
        )  # fmt: skip
        offered = {o["InstanceType"] for o in reply.get("InstanceTypeOfferings", [])}
        evidence = {"wanted": types, "offered": sorted(offered)}
        absent = [t for t in types if t not in offered]
        if absent:
            return Outcome("fail", f"{self.dr} does not offer {', '.join(absent)}: the DR "
                           "region cannot run the model at all", evidence,
                           rto_not_achievable=True)  # fmt: skip
        return Outcome("pass", f"{self.dr} offers {', '.join(types)}", evidence)

    def group_size(self) -> Outcome:
        need = self._failover_need()
        groups = self._groups(self.dr)
        room = sum(int(g.get("MaxSize", 0)) for g in groups)
        evidence: JsonDocument = {
            "failover_needs": need,
            "max_size": {str(g["AutoScalingGroupName"]): g.get("MaxSize") for g in groups},
        }
        if room < need:
            return Outcome("fail", f"the DR groups may grow to {room} instances, failover "
                           f"needs {need}", evidence, rto_not_achievable=True)  # fmt: skip
        return Outcome("pass", f"the DR groups may grow to {room} (failover needs {need})",
                       evidence)  # fmt: skip

    def capacity(self) -> Outcome:
        return capacity_outcome(self.reader, self.dr, self._instance_types(), self._failover_need())

    def dns_failover(self) -> Outcome:
        zone, record = self.posture.dns_zone, self.posture.dns_record
        if not (zone and record):
            raise Unknown("the plan names no Route 53 failover record "
                          "(aws.posture.dns-zone and dns-record)")  # fmt: skip
        name = record.rstrip(".") + "."
        reply = self.reader.call(
            "route53", self.primary, "ListResourceRecordSets", HostedZoneId=zone,
            StartRecordName=name,
        )  # fmt: skip
        records = [r for r in reply.get("ResourceRecordSets", []) if r.get("Name") == name]
        roles = {r.get("Failover"): r for r in records if r.get("Failover")}
        evidence: dict[str, Any] = {"records": records}
        if "PRIMARY" not in roles or "SECONDARY" not in roles:
            return Outcome("fail", f"{name} has no PRIMARY/SECONDARY failover pair: DNS will "
                           "not move traffic to the DR region", evidence)  # fmt: skip
        check_id = roles["PRIMARY"].get("HealthCheckId")
        if not check_id:
            return Outcome("fail", f"the PRIMARY record of {name} has no health check: "
                           "Route 53 never fails it over", evidence)  # fmt: skip
        health = self.reader.call("route53", self.primary, "GetHealthCheck", HealthCheckId=check_id)
        evidence["health_check"] = health.get("HealthCheck", {}).get("HealthCheckConfig")
        return Outcome("pass", f"{name} fails over, its primary watched by health check "
                       f"{check_id}", evidence)  # fmt: skip

    # -- feature store ---------------------------------------------------------------------
    def online_store(self) -> Outcome:
        table, datastore = self.posture.online_store_table, self.posture.online_store_datastore
        if table:
            reply = self.reader.call("dynamodb", self.primary, "DescribeTable", TableName=table)
            replicas = reply.get("Table", {}).get("Replicas") or []
            evidence = {"replicas": replicas}
            if not any(r.get("RegionName") == self.dr for r in replicas):
                return Outcome("fail", f"DynamoDB table {table} has no replica in {self.dr}: "
                               "not a global table", evidence)  # fmt: skip
            return Outcome("pass", f"{table} is a global table with a replica in {self.dr} "
                           "(asynchronous: no time bound)", evidence,
                           rpo_bound_unknown=True)  # fmt: skip
        if datastore:
            reply = self.reader.call(
                "elasticache", self.primary, "DescribeGlobalReplicationGroups",
                GlobalReplicationGroupId=datastore, ShowMemberInfo=True,
            )  # fmt: skip
            groups = reply.get("GlobalReplicationGroups", [])
            members = [m for g in groups for m in g.get("Members", [])]
            evidence = {"members": members}
            regions = {m.get("ReplicationGroupRegion") for m in members}
            if self.dr not in regions:
                return Outcome("fail", f"global datastore {datastore} has no member in "
                               f"{self.dr}", evidence)  # fmt: skip
            return Outcome("pass", f"global datastore {datastore} spans {sorted(regions)}",
                           evidence, rpo_bound_unknown=True)  # fmt: skip
        raise Unknown("the plan names no online store (aws.posture.online-store-table or "
                      "online-store-datastore)")  # fmt: skip

    def pitr(self) -> Outcome:
        table = str(self.posture.online_store_table)
        reply = self.reader.call(
            "dynamodb", self.primary, "DescribeContinuousBackups", TableName=table
        )
        description = reply.get("ContinuousBackupsDescription", {})
        status = (description.get("PointInTimeRecoveryDescription") or {}).get(
            "PointInTimeRecoveryStatus"
        )
        if status != "ENABLED":
            return Outcome("fail", f"point-in-time recovery is {status or 'off'} on {table}: a "
                           "bad write replicates and cannot be undone", description)  # fmt: skip
        return Outcome("pass", f"point-in-time recovery is on for {table}", description)

    # -- buckets of the stateful tiers --------------------------------------------------
    def _tier_buckets(self, tier: str) -> list[tuple[str, str | None]]:
        buckets = self.posture.buckets.get(tier)  # type: ignore[call-overload]
        if not buckets:
            raise Unknown(f"the plan names no bucket for {tier} (aws.posture.buckets)")
        return [(b.bucket, b.dr_bucket) for b in buckets]

    def _buckets_probe(self, tier: str) -> Probe:
        return lambda: self._replicated(self._tier_buckets(tier))

    def _backup_probe(self, tier: str) -> Probe:
        def probe() -> Outcome:
            buckets = [b for b, _ in self._tier_buckets(tier)]
            return backup_outcome(self.reader, self.primary, self.dr, buckets)

        return probe

    def _replicated(self, pairs: list[tuple[str, str | None]]) -> Outcome:
        evidence: dict[str, Any] = {}
        failed, untimed = [], []
        for bucket, dr_bucket in pairs:
            status, why, found, timed = _s3.replication(
                self.reader, self.primary, bucket, self.dr, dr_bucket
            )
            evidence[bucket] = found
            if status != "pass":
                failed.append(why)
            elif not timed:
                untimed.append(why)
        if failed:
            return Outcome("fail", "; ".join(failed), evidence)
        if untimed:
            return Outcome("pass", "; ".join(untimed), evidence, rpo_bound_unknown=True)
        names = ", ".join(b for b, _ in pairs)
        why = f"replicated to {self.dr} with Replication Time Control (99.99% within 15 min): "
        return Outcome("pass", why + names, evidence, rpo_bound=_s3.RTC_BOUND)


def _repository_matches(image: str, filters: list[dict[str, Any]]) -> bool:
    if not filters:
        return True
    return any(
        f.get("filterType") == "PREFIX_MATCH" and image.startswith(str(f.get("filter", "")))
        for f in filters
    )


def _group_types(reader: Reader, region: str, group: dict[str, Any]) -> set[str]:
    """The instance types a group launches: its mixed-instances overrides, else its
    launch template's type."""
    mixed = group.get("MixedInstancesPolicy") or {}
    overrides = (mixed.get("LaunchTemplate") or {}).get("Overrides") or []
    types = {o["InstanceType"] for o in overrides if o.get("InstanceType")}
    if types:
        return types
    template = group.get("LaunchTemplate") or (mixed.get("LaunchTemplate") or {}).get(
        "LaunchTemplateSpecification"
    )
    if not template:
        return set()
    selector = (
        {"LaunchTemplateId": template["LaunchTemplateId"]}
        if template.get("LaunchTemplateId")
        else {"LaunchTemplateName": template["LaunchTemplateName"]}
    )
    version = template.get("Version") or "$Default"
    reply = reader.call(
        "ec2", region, "DescribeLaunchTemplateVersions", Versions=[version], **selector
    )
    return {
        v["LaunchTemplateData"]["InstanceType"]
        for v in reply.get("LaunchTemplateVersions", [])
        if v.get("LaunchTemplateData", {}).get("InstanceType")
    }
