"""Cloud and cluster API failures as one line each, never a traceback.

Every boto3 client a target uses is wrapped (:func:`guarded`): any botocore failure of
a call becomes a :class:`~aidrill.errors.CloudError` that says what kind of failure it
is and what to do about it. The same for the Kubernetes client (:func:`kube_failure`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from aidrill.errors import CloudError

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId",
            "UnrecognizedClientException", "AuthFailure", "SignatureDoesNotMatch"}  # fmt: skip
_THROTTLED = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
              "SlowDown", "RequestThrottled"}  # fmt: skip


def aws_failure(exc: BotoCoreError | ClientError, doing: str) -> CloudError:
    """One line for a failed AWS call: what failed, why, and what to do."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        why = "no AWS credentials were found (set AWS_PROFILE or AWS_ACCESS_KEY_ID, or run "
        why += "where an instance or task role applies)"
    elif isinstance(exc, NoRegionError):
        why = "no AWS region is set (AWS_REGION, or the plan's regions)"
    elif isinstance(exc, EndpointConnectionError):
        why = f"the AWS endpoint does not answer ({exc.kwargs.get('endpoint_url', 'unknown')})"
    elif isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", "")).strip()
        if code in _DENIED:
            why = f"access denied ({code}: {message}); the identity needs read access"
        elif code in _EXPIRED:
            why = f"the credentials were refused ({code}: {message}); refresh them"
        elif code in _THROTTLED:
            why = f"AWS throttled the call ({code}); try again in a minute"
        else:
            why = f"{code or 'error'}: {message}"
    else:
        why = str(exc)
    failure = CloudError(f"AWS: {doing}: {why}")
    failure.code = (
        str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""
    )
    return failure


class _Guarded:
    """A boto3 client whose calls fail as CloudError."""

    def __init__(self, client: Any, service: str, region: str) -> None:
        self._client = client
        self._where = f"{service} in {region}"

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("get_waiter", "meta"):
            return attribute
        return self._call(attribute, name)

    def _call(self, method: Callable[..., Any], name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except (BotoCoreError, ClientError) as exc:
                raise aws_failure(exc, f"{self._where}: {name}") from exc

        return call


def guarded(client: Any, service: str, region: str) -> Any:
    return _Guarded(client, service, region)
