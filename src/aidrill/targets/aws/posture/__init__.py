"""The AWS kind's posture: what an AWS estate's configuration promises, per component
of the plan (replication, DR capacity, failover records, backups), read-only and
inside the plan's allow-list. It writes the kind-neutral record of ``aidrill.posture``."""

from aidrill.targets.aws.posture._backup import schedule_period
from aidrill.targets.aws.posture._run import check_posture

__all__ = ["check_posture", "schedule_period"]
