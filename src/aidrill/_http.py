"""The one HTTP client every outside call of a run goes through (probes, canaries,
health checks, the model registry): TLS verified (the system's trust store, or the
plan's CA bundle), bounded timeouts, the plan's headers on every request.

Header values may reference the environment (``{type: env, key: NAME}``, as Chaos
Toolkit's secrets do); they are resolved here, sent, and never written anywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import certifi
import urllib3

from aidrill.errors import InputError

HEADERS_ENV = "AIDRILL_HTTP_HEADERS"  # how the load's own process receives the headers
CA_BUNDLE_ENV = "AIDRILL_CA_BUNDLE"


def resolve_headers(declared: Mapping[str, Any]) -> dict[str, str]:
    """Header values from the plan: literal strings, or ``{type: env, key: NAME}``."""
    resolved = {}
    for name, value in declared.items():
        if isinstance(value, Mapping):
            key = str(value.get("key", ""))
            if value.get("type") != "env" or not key:
                raise InputError(f"header {name}: use a string or {{type: env, key: NAME}}")
            if key not in os.environ:
                raise InputError(
                    f"header {name}: the environment variable {key} is not set",
                    field="headers",
                )
            resolved[name] = os.environ[key]
        else:
            resolved[name] = str(value)
    return resolved


@dataclass(frozen=True)
class HttpSettings:
    """What every outside request carries and trusts (resolved header values)."""

    headers: dict[str, str] = field(default_factory=dict)
    ca_bundle: str | None = None  # PEM file; None: certifi's bundle
    verify: bool = True

    def secrets(self) -> set[str]:
        """Header values, redacted wherever a run writes evidence."""
        return {v for v in self.headers.values() if len(v) >= 4}

    def for_subprocess(self) -> dict[str, str]:
        """The environment that hands these settings to the load's own process."""
        env = {HEADERS_ENV: json.dumps(self.headers)} if self.headers else {}
        if self.ca_bundle:
            env[CA_BUNDLE_ENV] = self.ca_bundle
        if not self.verify:
            env[CA_BUNDLE_ENV] = "insecure"
        return env


class HttpClient:
    """JSON over HTTP(S), pooled and thread-safe; an endpoint that does not answer is
    status 0, never an exception (a probe that fails is a failed sample)."""

    def __init__(self, settings: HttpSettings | None = None) -> None:
        self.settings = settings or HttpSettings()
        verify = self.settings.verify
        self._pool = urllib3.PoolManager(
            num_pools=16,
            maxsize=8,
            cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
            ca_certs=(self.settings.ca_bundle or certifi.where()) if verify else None,
            retries=False,
        )

    def json(
        self, method: str, url: str, payload: Any = None, timeout: float = 1.0
    ) -> tuple[int, Any]:
        """One JSON request; (status, parsed body), or (0, None) when the endpoint does
        not answer or its body is not JSON."""
        headers = dict(self.settings.headers)
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        response = self._request(method, url, body, headers, timeout)
        if response is None:
            return 0, None
        try:
            return response.status, json.loads(response.data or b"null")
        except ValueError:
            return response.status, None

    def post_raw(
        self,
        url: str,
        body: bytes,
        timeout: float,
        content_type: str = "application/json",
        extra: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """A request whose answer is read as bytes (the probes score it themselves);
        ``extra``: headers of this request alone (a signature)."""
        headers = {**self.settings.headers, "Content-Type": content_type, **(extra or {})}
        response = self._request("POST", url, body, headers, timeout)
        return (0, b"") if response is None else (response.status, response.data)

    def _request(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> Any:
        """The response, or None when the endpoint does not answer."""
        try:
            return self._pool.request(
                method,
                url,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            return None

    def close(self) -> None:
        self._pool.clear()
