"""The AWS twin's one endpoint: S3 requests go to the region store that holds the
bucket (through its fault proxy, so storage faults still apply); every other service
(EC2, Auto Scaling, FIS, SSM, STS) goes to the twin's moto server.

``AWS_ENDPOINT_URL`` points boto3, chaostoolkit-aws and aidrill at this one address.
``DescribeScalingActivities`` of a twin group is answered here from the lab region's
supervisor (moto keeps no activity history), as the group's own history would read.
``GetHealthCheckStatus`` of a twin health check carries the lab region's health (moto
reports every check healthy). ``GET /aidrill-twin/serving`` answers which AWS region
the global router serves from.
"""

from __future__ import annotations

import datetime as dt
import http.client
import re
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from aidrill._event import ActivityRecord
from aidrill.lab._http import JsonHandler, QuietServer

_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade"}


class AwsRouter:
    def __init__(
        self,
        services_port: int,
        bucket_ports: dict[str, int],
        serving: Callable[[], list[str]],
        activities: Callable[[str], list[ActivityRecord] | None] = lambda group: None,
        check_healthy: Callable[[str], bool | None] = lambda check: None,
    ) -> None:
        self.services_port = services_port
        self.bucket_ports = bucket_ports  # bucket -> the port of its region's store proxy
        self.serving = serving
        self.activities = activities  # a twin group's supervisor activities; None: not one
        self.check_healthy = check_healthy  # a twin health check's verdict; None: not one
        self.server = QuietServer(("127.0.0.1", 0), _handler(self))
        self.port = self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def upstream(self, service: str | None, path: str) -> int | None:
        """The port a request goes to; None for the S3 bucket listing (merged here)."""
        if service != "s3":
            return self.services_port
        bucket = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        if not bucket:
            return None
        return self.bucket_ports.get(bucket, self.services_port)


def _forward(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, response.getheaders(), payload
    finally:
        conn.close()


def _merged_bucket_list(router: AwsRouter, headers: dict[str, str]) -> bytes:
    """ListBuckets across every region store: each holds its own region's bucket."""
    entries: list[str] = []
    first = b""
    for port in sorted(set(router.bucket_ports.values())):
        _, _, payload = _forward(port, "GET", "/", headers, b"")
        first = first or payload
        entries += re.findall(r"<Bucket>.*?</Bucket>", payload.decode(errors="replace"), re.S)
    text = first.decode(errors="replace")
    merged = "<Buckets>" + "".join(entries) + "</Buckets>"
    return re.sub(r"<Buckets>.*?</Buckets>|<Buckets/>", merged, text, count=1, flags=re.S).encode()


_STATUS_CODE = {"started": "InProgress", "succeeded": "Successful", "failed": "Failed",
                "cancelled": "Cancelled"}  # fmt: skip


def _stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Launch:
    """One launch as an Auto Scaling group lists it: its start, end and final status."""

    time: float
    action: str
    status: str
    cause: str
    ended: float | None = None


def _one_per_launch(found: list[ActivityRecord]) -> list[_Launch]:
    """The supervisor lists a launch when it starts and again when it ends; an Auto
    Scaling group lists it once, with its start, its end and its final status."""
    merged: list[_Launch] = []
    open_launches: dict[str, _Launch] = {}
    for activity in sorted(found, key=lambda a: a["time"]):
        action, status = activity.get("action", ""), activity.get("status", "")
        cause = activity.get("cause", "")
        if status == "started":
            launch = _Launch(activity["time"], action, status, cause)
            open_launches[action] = launch
            merged.append(launch)
        elif action in open_launches:
            launch = open_launches.pop(action)
            launch.status, launch.ended = status, activity["time"]
            launch.cause = cause or launch.cause
        else:
            merged.append(_Launch(activity["time"], action, status, cause, activity["time"]))
    return merged


def _scaling_activities(router: AwsRouter, service: str | None, body: bytes) -> bytes | None:
    """The Query API's answer to DescribeScalingActivities for a twin group, or None."""
    if service != "autoscaling" or b"DescribeScalingActivities" not in body:
        return None
    form = urllib.parse.parse_qs(body.decode(errors="replace"))
    group = (form.get("AutoScalingGroupName") or [""])[0]
    if (form.get("Action") or [""])[0] != "DescribeScalingActivities" or not group:
        return None
    found = router.activities(group)
    if found is None:
        return None
    members = []
    for activity in sorted(_one_per_launch(found), key=lambda a: a.time, reverse=True):
        ended, message = activity.ended, activity.cause
        members.append(
            "<member>"
            f"<ActivityId>{uuid.uuid5(uuid.NAMESPACE_OID, f'{group}{activity}')}</ActivityId>"
            f"<AutoScalingGroupName>{escape(group)}</AutoScalingGroupName>"
            f"<Description>{escape(activity.action)}</Description>"
            "<Cause>the group's desired capacity is above its running instances</Cause>"
            f"<StartTime>{_stamp(activity.time)}</StartTime>"
            + ("" if ended is None else f"<EndTime>{_stamp(ended)}</EndTime>")
            + f"<StatusCode>{_STATUS_CODE.get(activity.status, 'InProgress')}"
            "</StatusCode>"
            + (f"<StatusMessage>{escape(message)}</StatusMessage>" if message else "")
            + "<Progress>100</Progress></member>"
        )
    return (
        '<DescribeScalingActivitiesResponse xmlns="http://autoscaling.amazonaws.com/doc/'
        '2011-01-01/"><DescribeScalingActivitiesResult><Activities>'
        + "".join(members)
        + "</Activities></DescribeScalingActivitiesResult><ResponseMetadata><RequestId>"
        + str(uuid.uuid4())
        + "</RequestId></ResponseMetadata></DescribeScalingActivitiesResponse>"
    ).encode()


_CHECK_STATUS = re.compile(r"^/2013-04-01/healthcheck/([^/?]+)/status")
_OBSERVED = re.compile(r"<Status>[^<]*</Status>")


def _health_check_status(
    router: AwsRouter, service: str | None, method: str, path: str, payload: bytes
) -> bytes:
    """moto's answer to GetHealthCheckStatus with each checker's status set from the
    lab (moto reports every check healthy); any other answer unchanged."""
    match = _CHECK_STATUS.match(path) if service == "route53" and method == "GET" else None
    healthy = router.check_healthy(match.group(1)) if match else None
    if healthy is None:
        return payload
    status = (
        "Success: HTTP Status Code 200, OK"
        if healthy
        else "Failure: HTTP Status Code 503, Service Unavailable"
    )
    return _OBSERVED.sub(f"<Status>{status}</Status>", payload.decode()).encode()


def _handler(router: AwsRouter) -> type[JsonHandler]:
    class RouterHandler(JsonHandler):
        def _relay(self) -> None:
            if self.path == "/aidrill-twin/serving":
                self.send_json(200, {"serving": router.serving()})
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            match = _SERVICE.search(self.headers.get("Authorization") or "")
            service = match.group(1) if match else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            port = router.upstream(service, self.path)
            activities = _scaling_activities(router, service, body)
            try:
                if activities is not None:
                    status, reply_headers, payload = 200, [("Content-Type", "text/xml")], activities
                elif port is None and self.command == "GET":
                    status, reply_headers, payload = 200, [], _merged_bucket_list(router, headers)
                    reply_headers = [("Content-Type", "application/xml")]
                else:
                    target = port if port is not None else router.services_port
                    status, reply_headers, payload = _forward(
                        target, self.command, self.path, headers, body
                    )
                    if status == 200:
                        payload = _health_check_status(
                            router, service, self.command, self.path, payload
                        )
            except OSError as exc:
                self.send_json(502, {"error": f"the twin's upstream failed: {exc}"})
                return
            self.send_response(status)
            for name, value in reply_headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = _relay
        do_PUT = _relay
        do_POST = _relay
        do_DELETE = _relay
        do_HEAD = _relay

    return RouterHandler


__all__ = ["AwsRouter"]
