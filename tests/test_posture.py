"""`aidrill posture` against moto's server over HTTP, with two estates built here: a
compliant one in us-east-1/us-west-2 and a broken one in eu-west-1/eu-central-1 where
each check fails for its own reason. Where moto lacks an API a check needs, the check
says unknown and why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner

from aidrill.cli.main import cli
from aidrill.errors import RefusedError
from aidrill.lab.data._storage import spawn_moto_server
from aidrill.plan import Plan
from aidrill.targets.aws.posture import check_posture, schedule_period

ACCOUNT = "123456789012"
GOOD = ("us-east-1", "us-west-2")
BAD = ("eu-west-1", "eu-central-1")


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server in its own process on an ephemeral loopback port."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    process, port = spawn_moto_server(log, "moto's server")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()


@pytest.fixture(scope="module")
def estates(moto_endpoint: str) -> Iterator[str]:
    patch = pytest.MonkeyPatch()
    for key, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "AKIAPOSTURETEST",
        "AWS_SECRET_ACCESS_KEY": "posture-secret-never-in-evidence",
        "AWS_DEFAULT_REGION": GOOD[0],
    }.items():
        patch.setenv(key, value)
    patch.delenv("AWS_PROFILE", raising=False)
    _build_compliant()
    _build_broken()
    yield moto_endpoint
    patch.undo()


def _client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)


def _bucket(name: str, region: str, lock: bool = False, versioned: bool = True) -> None:
    s3 = _client("s3", region)
    extra: dict[str, Any] = {"ObjectLockEnabledForBucket": True} if lock else {}
    if region != "us-east-1":
        extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=name, **extra)
    if versioned:
        s3.put_bucket_versioning(
            Bucket=name,
            VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}
            if lock
            else {"Status": "Enabled"},
            **({"MFA": "arn:aws:iam::123456789012:mfa/root 123456"} if lock else {}),
        )


def _replicate(source: str, region: str, destination: str, rtc: bool) -> None:
    target: dict[str, Any] = {"Bucket": f"arn:aws:s3:::{destination}"}
    if rtc:
        target["ReplicationTime"] = {"Status": "Enabled", "Time": {"Minutes": 15}}
        target["Metrics"] = {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    _client("s3", region).put_bucket_replication(
        Bucket=source,
        ReplicationConfiguration={
            "Role": f"arn:aws:iam::{ACCOUNT}:role/replication",
            "Rules": [
                {
                    "ID": "to-dr",
                    "Priority": 1,
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "DeleteMarkerReplication": {"Status": "Disabled"},
                    "Destination": target,
                }
            ],
        },
    )


def _group(name: str, region: str, zones: list[str], desired: int, max_size: int) -> None:
    _client("ec2", region).create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "g5.xlarge"},
    )
    _client("autoscaling", region).create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name},
        MinSize=0,
        MaxSize=max_size,
        DesiredCapacity=desired,
        AvailabilityZones=zones,
    )


def _dns(zone_name: str, with_health_check: bool, with_secondary: bool) -> str:
    route53 = _client("route53", GOOD[0])
    zone = route53.create_hosted_zone(Name=zone_name, CallerReference=zone_name)
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    primary: dict[str, Any] = {
        "Name": f"infer.{zone_name}",
        "Type": "CNAME",
        "SetIdentifier": "primary",
        "Failover": "PRIMARY",
        "TTL": 30,
        "ResourceRecords": [{"Value": "primary.example.com"}],
    }
    if with_health_check:
        check = route53.create_health_check(
            CallerReference=f"hc-{zone_name}",
            HealthCheckConfig={
                "Type": "HTTPS",
                "FullyQualifiedDomainName": "primary.example.com",
                "Port": 443,
                "ResourcePath": "/healthz",
            },
        )
        primary["HealthCheckId"] = check["HealthCheck"]["Id"]
    changes = [{"Action": "CREATE", "ResourceRecordSet": primary}]
    if with_secondary:
        secondary = {
            **{k: v for k, v in primary.items() if k != "HealthCheckId"},
            "SetIdentifier": "secondary",
            "Failover": "SECONDARY",
            "ResourceRecords": [{"Value": "dr.example.com"}],
        }
        changes.append({"Action": "CREATE", "ResourceRecordSet": secondary})
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id


def _table(name: str, region: str, pitr: bool) -> None:
    dynamodb = _client("dynamodb", region)
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "entity", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "entity", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if pitr:
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


ZONES: dict[str, str] = {}


def _build_compliant() -> None:
    east, west = GOOD
    for bucket, region in (("good-art-east", east), ("good-art-west", west)):
        _bucket(bucket, region, lock=True)
    _replicate("good-art-east", east, "good-art-west", rtc=True)
    for tier in ("offline", "index", "ckpt", "evalsets"):
        _bucket(f"good-{tier}-east", east)
        _bucket(f"good-{tier}-west", west)
        _replicate(f"good-{tier}-east", east, f"good-{tier}-west", rtc=True)
    _client("ecr", east).put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": west, "registryId": ACCOUNT}],
                    "repositoryFilters": [{"filter": "serve", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    _group("good-gpu-east", east, [f"{east}a", f"{east}b"], desired=2, max_size=4)
    _group("good-gpu-west", west, [f"{west}a", f"{west}b"], desired=0, max_size=4)
    ZONES["good"] = _dns("good.example.com", with_health_check=True, with_secondary=True)
    _table("good-features", east, pitr=True)
    _client("backup", east).create_backup_plan(
        BackupPlan={
            "BackupPlanName": "ai-data",
            "Rules": [
                {
                    "RuleName": "every-6h",
                    "TargetBackupVaultName": "ai",
                    "ScheduleExpression": "cron(0 */6 * * ? *)",
                    "CopyActions": [
                        {"DestinationBackupVaultArn": f"arn:aws:backup:{west}:{ACCOUNT}:vault:ai"}
                    ],
                }
            ],
        }
    )


def _build_broken() -> None:
    east, west = BAD
    _bucket("bad-art-east", east, versioned=False)  # no versioning, no lock, no replication
    _bucket("bad-art-west", west)
    _bucket("bad-offline-east", east)
    _bucket("bad-index-east", east)  # never replicated
    _bucket("bad-ckpt-east", east)
    _bucket("bad-ckpt-west", west)
    _replicate("bad-ckpt-east", east, "bad-ckpt-west", rtc=False)  # replicated, no time bound
    _bucket("bad-evalsets-east", east)
    _bucket("bad-evalsets-west", west)
    _bucket("bad-evalsets-scratch", west)
    _replicate("bad-evalsets-east", east, "bad-evalsets-scratch", rtc=True)  # not the DR copy
    _group("bad-gpu-east", east, [f"{east}a"], desired=4, max_size=4)  # one zone
    _group("bad-gpu-west", west, [f"{west}a", f"{west}b"], desired=0, max_size=1)  # too small
    ZONES["bad"] = _dns("bad.example.com", with_health_check=False, with_secondary=False)
    _table("bad-features", east, pitr=False)  # no replica, no point-in-time recovery


def _plan(kind: str, **posture: Any) -> Plan:
    east, west = GOOD if kind == "good" else BAD
    components = [
        ("inference", "inference", None),
        ("feature-store", "feature-store", "5m"),
        ("vector-index", "vector-index", "1h"),
        ("model-artifacts", "model-artifacts", "15m"),
        ("training", "training", "24h"),
        ("evaluation", "evaluation", "24h"),
    ]
    buckets = {
        tier: [{"bucket": f"{kind}-{name}-east", "dr-bucket": f"{kind}-{name}-west"}]
        for tier, name in (
            ("feature-store", "offline"),
            ("vector-index", "index"),
            ("training", "ckpt"),
            ("evaluation", "evalsets"),
        )
    }
    document: dict[str, Any] = {
        "system": f"{kind} estate",
        "target": "aws",
        "regions": [{"name": east, "role": "primary"}, {"name": west, "role": "dr"}],
        "slo": {"success_ratio": 0.99, "p95_latency": "1s", "quality_floor": 0.8},
        "components": [
            {"name": n, "tier": t, "rto": "10m", "rationale": "users", **({"rpo": r} if r else {})}
            for n, t, r in components
        ],
        "allow": {"targets": ["aws"], "aws_accounts": [ACCOUNT], "aws_regions": [east, west]},
        "aws": {
            "accounts": [ACCOUNT],
            "inference": "http://127.0.0.1:9/infer",
            "golden-set": "golden.json",
            "regions": {
                east: {"gpu-groups": [f"{kind}-gpu-east"], "artifact-bucket": f"{kind}-art-east"},
                west: {"gpu-groups": [f"{kind}-gpu-west"], "artifact-bucket": f"{kind}-art-west"},
            },
            "posture": {
                "object-lock": True,
                # moto never stores MFADelete, so only its failing side can be shown here.
                "mfa-delete": kind == "bad",
                "images": ["serve-llm"] if kind == "good" else ["llm-server"],
                "dns-zone": ZONES[kind],
                "dns-record": f"infer.{kind}.example.com",
                "buckets": buckets,
                **posture,
            },
        },
    }
    if kind == "good":
        document["aws"]["posture"].setdefault("online-store-datastore", "good-features-global")
    else:
        document["aws"]["posture"].setdefault("online-store-table", "bad-features")
        document["aws"]["posture"].setdefault("gpu-instance-types", ["g9z.48xlarge"])
    return Plan.model_validate(document)


def _by_id(plan: Plan) -> dict[str, Any]:
    return {c.id: c for c in check_posture(plan).checks}


# What moto cannot answer, and why the check says unknown there.
MOTO_UNKNOWN = {
    "inference.dr-capacity": "DescribeCapacityReservations",
    "feature-store.online-replication": "DescribeGlobalReplicationGroups",
    "feature-store.backup": "ListBackupSelections",
    "vector-index.backup": "ListBackupSelections",
    "training.backup": "ListBackupSelections",
    "evaluation.backup": "ListBackupSelections",
}


def test_the_compliant_estate_passes_every_check_moto_can_answer(estates: str) -> None:
    checks = _by_id(_plan("good"))
    for check_id, check in checks.items():
        if check_id in MOTO_UNKNOWN:
            assert check.status == "unknown", (check_id, check.why)
            assert "not available at this endpoint" in check.why
            assert MOTO_UNKNOWN[check_id] in check.why.replace("_", "")
        else:
            assert check.status == "pass", (check_id, check.why)
    assert checks["model-artifacts.replication"].rpo_bound == 900
    assert "Replication Time Control" in checks["model-artifacts.replication"].why
    assert checks["inference.dr-instance-types"].evidence["wanted"] == ["g5.xlarge"]


# Each check of the broken estate fails for its own reason (the words that say it).
BROKEN = {
    "model-artifacts.versioning": "versioning is not enabled on bad-art-east",
    "model-artifacts.replication": "bad-art-east has no replication rule",
    "model-artifacts.object-lock": "object lock is off on bad-art-east, bad-art-west",
    "model-artifacts.mfa-delete": "MFA delete is off on bad-art-east, bad-art-west",
    "model-artifacts.images": "no ECR replication rule copies llm-server to eu-central-1",
    "inference.multi-az": "one zone only: bad-gpu-east",
    "inference.dr-instance-types": "eu-central-1 does not offer g9z.48xlarge",
    "inference.dr-group-size": "may grow to 1 instances, failover needs 4",
    "inference.dns-failover": "no PRIMARY/SECONDARY failover pair",
    "feature-store.online-replication": "bad-features has no replica in eu-central-1",
    "feature-store.point-in-time-recovery": "point-in-time recovery is DISABLED",
    "feature-store.bucket-replication": "bad-offline-east has no replication rule",
    "vector-index.bucket-replication": "bad-index-east has no replication rule",
    "evaluation.bucket-replication": "no enabled rule of bad-evalsets-east replicates to "
    "bad-evalsets-west",
    "feature-store.backup": "no backup plan covers bad-offline-east",
    "vector-index.backup": "no backup plan covers bad-index-east",
    "training.backup": "no backup plan covers bad-ckpt-east",
    "evaluation.backup": "no backup plan covers bad-evalsets-east",
}


def test_the_broken_estate_fails_each_check_for_its_own_reason(estates: str) -> None:
    checks = _by_id(_plan("bad"))
    for check_id, words in BROKEN.items():
        assert checks[check_id].status == "fail", (check_id, checks[check_id].why)
        assert words in checks[check_id].why, (check_id, checks[check_id].why)
    # Replicated without Replication Time Control: a copy, but no bound on its RPO.
    training = checks["training.bucket-replication"]
    assert training.status == "pass" and training.rpo_bound is None and training.rpo_bound_unknown
    # No reservation can be read here (moto), and the type itself does not exist.
    capacity = checks["inference.dr-capacity"]
    assert capacity.status == "fail" and "g9z.48xlarge" in capacity.why
    assert checks["inference.dr-instance-types"].rto_not_achievable


def test_every_check_flips_between_the_estates(estates: str) -> None:
    good, bad = _by_id(_plan("good")), _by_id(_plan("bad"))
    for check_id in BROKEN:
        if check_id in MOTO_UNKNOWN:
            assert good[check_id].status == "unknown"
            continue
        if check_id == "feature-store.point-in-time-recovery":
            continue  # the good plan names a global datastore, not a table; flipped below
        if check_id == "model-artifacts.mfa-delete":
            assert check_id not in good  # asked of the broken estate only (moto drops it)
            continue
        assert (good[check_id].status, bad[check_id].status) == ("pass", "fail"), check_id


def test_a_dynamodb_online_store_flips_point_in_time_recovery(estates: str) -> None:
    checks = _by_id(_plan("good", **{"online-store-table": "good-features"}))
    assert checks["feature-store.point-in-time-recovery"].status == "pass"
    # moto accepts a table's replicas but never lists them: on moto a global table reads
    # as a table without replicas (on AWS, DescribeTable lists them).
    assert checks["feature-store.online-replication"].status == "fail"


def test_estimates_are_conservative_bounds(estates: str) -> None:
    good = {c.name: c.estimate for c in check_posture(_plan("good")).components}
    bad = {c.name: c.estimate for c in check_posture(_plan("bad")).components}
    assert good["model-artifacts"].rpo_seconds == 900
    assert good["inference"].rto == "no bound implied by configuration"
    assert bad["inference"].rto == "not achievable"
    # Any copy check that fails makes the tier's RPO unbounded, even beside a copy that
    # passes (training is replicated, without a time bound, but has no backup plan).
    assert bad["training"].rpo.startswith("not bounded (fails: training.backup")
    assert bad["vector-index"].rpo.startswith("not bounded")


def test_cli_writes_json_and_html_exit_codes_and_no_secret(estates: str, tmp_path: Path) -> None:
    runner = CliRunner()
    for kind, code in (("good", 0), ("bad", 1)):
        plan_path = tmp_path / f"{kind}.yaml"
        plan_path.write_text(yaml.safe_dump(_plan(kind).model_dump(mode="json", by_alias=True)))
        out = tmp_path / kind
        result = runner.invoke(cli, ["posture", "--plan", str(plan_path), "--out", str(out)])
        assert result.exit_code == code, result.output
        document = json.loads((out / "posture.json").read_text())
        assert document["account"] == ACCOUNT
        assert {c["name"] for c in document["components"]} >= {"inference", "training"}
        html = (out / "posture.html").read_text()
        assert "<script" not in html and "Configuration posture" in html
        for text in (html, (out / "posture.json").read_text()):
            assert "posture-secret-never-in-evidence" not in text
    assert document["counts"]["fail"] == len(BROKEN) + 1  # and dr-capacity


def test_an_account_outside_the_allow_list_is_refused(estates: str, tmp_path: Path) -> None:
    document = _plan("good").model_dump(mode="json", by_alias=True)
    document["allow"]["aws_accounts"] = ["999999999999"]
    with pytest.raises(RefusedError, match="123456789012 is not in the plan's allow-list"):
        check_posture(Plan.model_validate(document))
    plan_path = tmp_path / "refused.yaml"
    plan_path.write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(cli, ["posture", "--plan", str(plan_path)])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(12 hours)", 12 * 3600),
        ("rate(1 day)", 86400),
        ("cron(0 5 ? * * *)", 86400),
        ("cron(0 */6 * * ? *)", 6 * 3600),
        ("cron(0 1,2 * * ? *)", 23 * 3600),
        ("cron(0 5 ? * MON *)", 7 * 86400),
        ("whenever", None),
    ],
)
def test_backup_schedules_read_as_their_longest_gap(expression: str, seconds: float) -> None:
    assert schedule_period(expression) == seconds


def test_the_quarterly_report_puts_estimates_beside_measures_and_files_findings(
    estates: str, tmp_path: Path
) -> None:
    plan_path = tmp_path / "bad.yaml"
    plan_path.write_text(yaml.safe_dump(_plan("bad").model_dump(mode="json", by_alias=True)))
    runner = CliRunner()
    posture_dir = tmp_path / "posture"
    assert runner.invoke(cli, ["posture", "--plan", str(plan_path), "--out", str(posture_dir)])
    (tmp_path / "runs").mkdir()
    out = tmp_path / "report"
    result = runner.invoke(
        cli,
        [
            "report", "--plan", str(plan_path), "--runs", str(tmp_path / "runs"),
            "--out", str(out), "--format", "html,json,md",
            "--posture", str(posture_dir / "posture.json"),
            "--tabletops", str(tmp_path / "none"), "--findings", str(tmp_path / "none.yaml"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    rows = {row["name"]: row for row in results["posture"]["components"]}
    assert rows["inference"]["estimated_rto"] == "not achievable"
    assert rows["inference"]["measured_status"] == "not drilled"
    assert "inference.multi-az" in rows["inference"]["failed"]
    ids = {f["id"]: f for f in results["findings"]}
    multi_az = ids["POSTURE-inference.multi-az"]
    assert multi_az["status"] == "open" and multi_az["component"] == "inference"
    assert ids["POSTURE-inference.dr-group-size"]["severity"] == "high"
    assert (out / "evidence" / "posture" / "posture.json").is_file()
    assert "Configuration posture" in (out / "index.html").read_text()
    assert "| inference | not achievable |" in (out / "summary.md").read_text()


def test_replication_to_a_ghost_unversioned_or_foreign_bucket_fails(estates: str) -> None:
    """A rule that names a DR bucket which does not exist (or is not versioned) copies
    nothing: the check fails, and the tier's RPO is not bounded, never 'unknown'."""
    east, west = BAD
    _bucket("ghost-art-east", east)
    _replicate("ghost-art-east", east, "ghost-art-west", rtc=True)  # never created
    _bucket("plain-art-east", east)
    _bucket("plain-art-west", west, versioned=False)
    _replicate("plain-art-east", east, "plain-art-west", rtc=True)
    for kind, words in (("ghost", "does not exist"), ("plain", "not versioned")):
        plan = _plan("bad").model_dump(mode="json", by_alias=True)
        plan["aws"]["regions"][east]["artifact-bucket"] = f"{kind}-art-east"
        plan["aws"]["regions"][west]["artifact-bucket"] = f"{kind}-art-west"
        checked = check_posture(Plan.model_validate(plan))
        replication = {c.id: c for c in checked.checks}["model-artifacts.replication"]
        assert replication.status == "fail" and words in replication.why, replication.why
        estimate = next(c for c in checked.components if c.name == "model-artifacts")
        assert estimate.estimate.rpo.startswith("not bounded"), estimate
