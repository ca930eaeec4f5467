"""Can the DR region launch the GPUs failover needs: capacity reservations for those
instance types, else the on-demand vCPU quota of their family."""

from __future__ import annotations

from typing import Any

from aidrill.posture import Outcome
from aidrill.targets.aws.posture._reader import Reader, Unknown

# On-demand vCPU quotas per instance family (Service Quotas codes for EC2).
_QUOTA = {
    "g": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "vt": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "p": ("L-417A185B", "Running On-Demand P instances"),
    "inf": ("L-1945791B", "Running On-Demand Inf instances"),
    "trn": ("L-2C3B7624", "Running On-Demand Trn instances"),
    "dl": ("L-6E869C2A", "Running On-Demand DL instances"),
}
_STANDARD = ("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances")


def capacity_outcome(reader: Reader, region: str, types: list[str], need: int) -> Outcome:
    evidence: dict[str, Any] = {"instance_types": types, "failover_needs": need}
    unknowns: list[str] = []
    try:
        reserved = _reserved(reader, region, types)
        evidence["reserved_available"] = reserved
        if reserved >= need:
            return Outcome("pass", f"{reserved} reserved {'/'.join(types)} instances in "
                           f"{region} cover the {need} failover needs", evidence)  # fmt: skip
    except Unknown as exc:
        unknowns.append(f"capacity reservations: {exc}")
    try:
        vcpus = _vcpus(reader, region, types)
        needed = need * max(vcpus.values())
        quotas = _quotas(reader, region, types)
    except Unknown as exc:
        unknowns.append(f"on-demand quota: {exc}")
        return Outcome("unknown", "; ".join(unknowns), evidence)
    evidence.update({"vcpus_per_instance": vcpus, "quotas": quotas, "vcpus_needed": needed})
    short = {code: value for code, value in quotas.items() if value < needed}
    note = f" ({'; '.join(unknowns)})" if unknowns else ""
    if short:
        return Outcome("fail", f"the on-demand vCPU quota in {region} ({short}) is below the "
                       f"{needed} vCPUs of {need} failover instances{note}", evidence,
                       rto_not_achievable=True)  # fmt: skip
    return Outcome("pass", f"the on-demand quota in {region} allows {need} failover instances "
                   f"({needed} vCPUs), though capacity is not reserved{note}",
                   evidence)  # fmt: skip


def _reserved(reader: Reader, region: str, types: list[str]) -> int:
    reply = reader.call(
        "ec2", region, "DescribeCapacityReservations",
        Filters=[{"Name": "instance-type", "Values": types}, {"Name": "state",
                                                               "Values": ["active"]}],
    )  # fmt: skip
    return sum(
        int(r.get("AvailableInstanceCount", 0)) for r in reply.get("CapacityReservations", [])
    )


def _vcpus(reader: Reader, region: str, types: list[str]) -> dict[str, int]:
    reply = reader.call("ec2", region, "DescribeInstanceTypes", InstanceTypes=types)
    found = {
        t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"])
        for t in reply.get("InstanceTypes", [])
    }
    if set(found) != set(types):
        raise Unknown(f"no vCPU count for {sorted(set(types) - set(found))}")
    return found


def _quotas(reader: Reader, region: str, types: list[str]) -> dict[str, float]:
    quotas = {}
    for instance_type in types:
        family = instance_type.split(".", 1)[0]
        prefix = next((p for p in sorted(_QUOTA, key=len, reverse=True)
                       if family.startswith(p)), None)  # fmt: skip
        code, _ = _QUOTA[prefix] if prefix else _STANDARD
        if code not in quotas:
            reply = reader.call(
                "service-quotas", region, "GetServiceQuota", ServiceCode="ec2", QuotaCode=code
            )
            quotas[code] = float(reply.get("Quota", {}).get("Value", 0))
    return quotas
