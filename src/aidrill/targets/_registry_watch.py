"""The model registry, observed from outside through MLflow's REST API.

- canary changes: every half second a new version of a per-run canary model is
  registered in the primary region's registry and its ``canary`` alias moved to it,
  each with its sequence number, time and outcome (``registry-canary.jsonl``); a change
  is acknowledged when both calls succeeded;
- the audit: which canary versions the registry of the serving region holds once the
  fault is over (``registry-audit.json``), for the RPO;
- samples: whether the serving region's registry resolves the production alias to the
  version it named when the run began (``components.jsonl``, component
  ``model-registry``), for the RTO.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from aidrill._http import HttpClient
from aidrill.targets._outside import join

API = "/api/2.0/mlflow"
CANARY_ALIAS = "canary"


class RegistryWatch:
    def __init__(
        self, registries: dict[str, str], primary: str, model: str, run_id: str, http: HttpClient
    ) -> None:
        self.http = http
        self.registries = registries
        self.primary = primary
        self.name, _, self.alias = model.partition("@")
        self.canary_model = f"aidrill-canary-{run_id}"
        self.expected: str | None = None  # production's version when the run began
        self._created = False

    def _url(self, region: str | None, path: str, **query: str) -> str | None:
        base = self.registries.get(region or "")
        if base is None:
            return None
        return join(base, f"{API}/{path}") + (f"?{urlencode(query)}" if query else "")

    def resolve(self, region: str | None) -> tuple[int, str | None]:
        """(HTTP status, version) of production in ``region``'s registry."""
        url = self._url(region, "registered-models/alias", name=self.name, alias=self.alias)
        if url is None:
            return 0, None
        status, body = self.http.json("GET", url, timeout=1.0)
        version = (body or {}).get("model_version", {}).get("version") if status == 200 else None
        return status, None if version is None else str(version)

    def begin(self) -> None:
        self.expected = self.resolve(self.primary)[1]

    # -- canary changes -------------------------------------------------------------------
    def change(self, seq: int) -> dict[str, Any]:
        """Register canary version ``seq`` and move the canary alias to it."""
        started = time.time()
        version = self._register(seq)
        ok = False
        if version is not None:
            url = self._url(self.primary, "registered-models/alias")
            body = {"name": self.canary_model, "alias": CANARY_ALIAS, "version": version}
            ok = url is not None and self.http.json("POST", url, body, timeout=1.0)[0] == 200
        return {"seq": seq, "time": round(started, 4), "ok": ok, "version": version}

    def _register(self, seq: int) -> str | None:
        url = self._url(self.primary, "model-versions/create")
        if url is None:
            return None
        if not self._created:
            create = self._url(self.primary, "registered-models/create")
            status, _ = self.http.json(
                "POST", str(create), {"name": self.canary_model}, timeout=1.0
            )
            # 400 RESOURCE_ALREADY_EXISTS: a registry restored from a copy may hold it.
            self._created = status in (200, 400)
        body = {
            "name": self.canary_model,
            "source": f"s3://aidrill-canary/{self.canary_model}/{seq}",
            "tags": [{"key": "seq", "value": str(seq)}],
        }
        status, reply = self.http.json("POST", url, body, timeout=1.0)
        if status == 404:
            self._created = False  # a restored registry that lost the canary model itself
        if status != 200:
            return None
        return str(reply["model_version"]["version"])

    def audit(self, region: str | None) -> dict[str, Any]:
        """Which canary changes the registry of ``region`` holds now."""
        audited_at = time.time()
        query = {"filter": f"name='{self.canary_model}'", "max_results": "10000"}
        url = self._url(region, "model-versions/search", **query)
        if url is None:
            return {"time": audited_at, "region": region, "surviving": None,
                    "error": f"no model registry is named for {region}"}  # fmt: skip
        status, body = self.http.json("GET", url, timeout=3.0)
        if status != 200:
            return {"time": audited_at, "region": region, "surviving": None,
                    "error": f"the registry answered {status}"}  # fmt: skip
        seqs = []
        for version in body.get("model_versions") or []:
            tags = {t.get("key"): t.get("value") for t in version.get("tags") or []}
            if str(tags.get("seq", "")).isdigit():
                seqs.append(int(tags["seq"]))
        return {"time": audited_at, "region": region, "surviving": sorted(seqs), "error": None}

    def cleanup(self) -> None:
        url = self._url(self.primary, "registered-models/delete")
        if url is not None:
            self.http.json("POST", url, {"name": self.canary_model}, timeout=2.0)

    # -- samples --------------------------------------------------------------------------
    def sample(self, now: float, region: str | None) -> dict[str, Any]:
        status, version = self.resolve(region)
        ok = status == 200 and version is not None and version == self.expected
        return {
            "time": now,
            "component": "model-registry",
            "ok": ok,
            "quality": 1.0 if ok else 0.0,
            "region": region,
            "version": version,
            "expected": self.expected,
        }
