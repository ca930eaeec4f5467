"""Do AWS Backup plans cover a tier's buckets, how often, and are the backups copied to
the DR region (only then do they bound the RPO of a region loss)?"""

from __future__ import annotations

import itertools
import re
from typing import Any

from aidrill.posture import Outcome
from aidrill.targets.aws.posture._reader import Reader

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}


def backup_outcome(reader: Reader, region: str, dr: str, buckets: list[str]) -> Outcome:
    plans = reader.call("backup", region, "ListBackupPlans").get("BackupPlansList", [])
    evidence: dict[str, Any] = {"plans": []}
    covering: dict[str, list[tuple[float | None, bool]]] = {b: [] for b in buckets}
    for summary in plans:
        plan_id = summary["BackupPlanId"]
        plan = reader.call("backup", region, "GetBackupPlan", BackupPlanId=plan_id)
        rules = (plan.get("BackupPlan") or {}).get("Rules", [])
        resources = _selected_resources(reader, region, plan_id)
        evidence["plans"].append(
            {"name": summary.get("BackupPlanName"), "rules": rules, "resources": resources}
        )
        for bucket in buckets:
            if _covers(resources, bucket):
                covering[bucket] += [
                    (schedule_period(r.get("ScheduleExpression", "")), _copies_to(r, dr))
                    for r in rules
                ]
    bare = [b for b, found in covering.items() if not found]
    if bare:
        return Outcome("fail", f"no backup plan covers {', '.join(bare)}", evidence)
    bounds = []
    for bucket, found in covering.items():
        copied = [period for period, to_dr in found if to_dr and period is not None]
        if not copied:
            return Outcome("pass", f"backups of {bucket} stay in {region}: they bound the "
                           "RPO of lost data, not of a lost region", evidence,
                           rpo_bound_unknown=True)  # fmt: skip
        bounds.append(min(copied))
    worst = max(bounds)
    hours = f"{worst / 3600:g} h"
    return Outcome("pass", f"backed up at least every {hours} and copied to {dr}", evidence,
                   rpo_bound=worst)  # fmt: skip


def _selected_resources(reader: Reader, region: str, plan_id: str) -> list[str]:
    reply = reader.call("backup", region, "ListBackupSelections", BackupPlanId=plan_id)
    resources: list[str] = []
    for selection in reply.get("BackupSelectionsList", []):
        detail = reader.call(
            "backup", region, "GetBackupSelection", BackupPlanId=plan_id,
            SelectionId=selection["SelectionId"],
        )  # fmt: skip
        resources += (detail.get("BackupSelection") or {}).get("Resources", [])
    return resources


def _covers(resources: list[str], bucket: str) -> bool:
    arn = f"arn:aws:s3:::{bucket}"
    return any(r in ("*", "arn:aws:s3:::*", arn) for r in resources)


def _copies_to(rule: dict[str, Any], dr: str) -> bool:
    return any(
        f":{dr}:" in str(action.get("DestinationBackupVaultArn", ""))
        for action in rule.get("CopyActions") or []
    )


def schedule_period(expression: str) -> float | None:
    """The longest gap between two backups of an AWS Backup schedule, in seconds (None
    when it cannot be told): ``rate(12 hours)``, ``cron(0 5 ? * * *)`` (daily),
    ``cron(0 */6 * * ? *)`` (every 6 h), ``cron(0 5 ? * MON *)`` (weekly)."""
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        return int(rate.group(1)) * _UNIT[rate.group(2).rstrip("s")]
    if not (expression.startswith("cron(") and expression.endswith(")")):
        return None
    fields = expression[5:-1].split()
    if len(fields) != 6:
        return None
    _, hour, day_of_month, _, day_of_week, _ = fields
    if day_of_month not in ("*", "?"):
        return 31 * 86400.0
    if day_of_week not in ("*", "?"):
        return 7 * 86400.0  # the longest gap of a weekly pattern is at most a week
    if hour == "*":
        return 3600.0
    if hour.startswith("*/") or "/" in hour:
        return float(hour.rsplit("/", 1)[1]) * 3600
    try:
        hours = sorted({int(h) for h in hour.split(",")})
    except ValueError:
        return 86400.0  # a range such as 8-17 fires at least daily
    gaps = [b - a for a, b in itertools.pairwise(hours)] + [24 - hours[-1] + hours[0]]
    return max(gaps) * 3600.0
