"""Read-only AWS calls for posture checks: each call is recorded, and an API the
endpoint does not implement (or denies) becomes an ``Unknown`` with that reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from aidrill.targets.aws._adapter import AwsTarget

# Codes meaning "this API is not there" rather than "the resource is not there".
_NOT_AVAILABLE = {
    "500",
    "501",
    "NotImplemented",
    "InvalidAction",
    "UnknownOperationException",
    "UnsupportedOperation",
    "NoSuchResourceException",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


class Unknown(Exception):
    """A check cannot tell: the API is missing at this endpoint, or access is denied."""


class Missing(Exception):
    """The resource (or its configuration) is not there: ``code`` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Reader:
    """One posture run's view of the estate: clients per service and region (from the
    target, so ``AWS_ENDPOINT_URL`` and the credential chain apply) and the calls made."""

    def __init__(self, target: AwsTarget, account: str | None = None) -> None:
        self.target = target
        self.calls: list[str] = []
        self._account = account
        self._clients: dict[tuple[str, str], Any] = {}

    def account(self) -> str | None:
        """The caller's account (read once by the posture run, STS)."""
        return self._account

    def call(self, service: str, region: str, operation: str, **params: Any) -> dict[str, Any]:
        label = f"{service}:{operation} ({region})"
        self.calls.append(label)
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self.target.raw_client(service, region)
        client = self._clients[key]
        method: Callable[..., dict[str, Any]] = getattr(client, _snake(operation))
        try:
            reply = dict(method(**params))
        except ClientError as exc:
            error = exc.response.get("Error") or {}
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _NOT_AVAILABLE or (status or 0) >= 500:
                raise Unknown(
                    f"{label} is not available at this endpoint ({code or status})"
                ) from exc
            if code in _DENIED:
                raise Unknown(f"{label} was denied ({code}): grant read access") from exc
            raise Missing(code, str(error.get("Message") or code)) from exc
        except ResponseParserError as exc:
            # An HTML error page instead of a reply: how an emulator answers an API it lacks.
            raise Unknown(
                f"{label} is not available at this endpoint (it answered no API reply)"
            ) from exc
        except BotoCoreError as exc:
            raise Unknown(f"{label} could not be read: {str(exc)[:200]}") from exc
        reply.pop("ResponseMetadata", None)
        return reply


def _snake(operation: str) -> str:
    out = []
    for i, char in enumerate(operation):
        if char.isupper() and i:
            out.append("_")
        out.append(char.lower())
    return "".join(out)
