"""One region's model registry: MLflow's registry store on SQLite, served over HTTP.

The store is MLflow's own ``SqlAlchemyStore`` (the code behind ``mlflow server``'s
registry) on a SQLite database; this process answers the part of MLflow's REST API
(``/api/2.0/mlflow/...``) that GPU nodes and aidrill's observer call: resolve an alias,
register a model and its versions, move an alias, list and delete. A replica
(``--replica``) answers reads only: its database is a copy of the primary's, replaced
by the lab's replication, and a write there would be lost at the next copy.

Run as ``python -m aidrill.lab.data.registry``; it prints ``READY <port>`` once serving and
exits by itself if its supervisor (the parent process) goes away.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from aidrill._json import Json, JsonObject
from aidrill.lab._http import JsonHandler, QuietServer, exit_when_orphaned, get_json

API = "/api/2.0/mlflow"
Reply = tuple[int, Any]


class RegistryError(Exception):
    """A registry call the lab made was not answered as expected."""


@dataclass(frozen=True)
class AliasTarget:
    """The model version an alias resolves to: what a GPU node loads and checks."""

    version: str
    source: str  # s3://bucket/key of its artifact
    tags: dict[str, str]  # the sha256 registered with it, a description


def resolve_alias(port: int, name: str, alias: str, timeout: float = 2.0) -> AliasTarget:
    """The model version an alias points to, from the registry at ``port``."""
    query = urlencode({"name": name, "alias": alias})
    status, body = get_json("127.0.0.1", port, f"{API}/registered-models/alias?{query}", timeout)
    if status != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else body
        raise RegistryError(f"the registry does not resolve {name}@{alias}: {status} {message}")
    found = body.get("model_version")
    if not isinstance(found, dict) or found.get("version") is None:
        raise RegistryError(f"the registry answered {name}@{alias} without a version: {body}")
    tags = found.get("tags")
    return AliasTarget(
        version=str(found["version"]),
        source=str(found.get("source") or ""),
        tags={
            str(t.get("key")): str(t.get("value"))
            for t in (tags if isinstance(tags, list) else [])
            if isinstance(t, dict)
        },
    )


def source_key(source: str) -> str:
    """``s3://bucket/models/model.npz`` -> ``models/model.npz`` (nodes read their own
    region's bucket: replication keeps the keys)."""
    parts = source.split("/", 3)
    if len(parts) < 4 or parts[0] != "s3:":
        raise RegistryError(f"not an s3:// source: {source!r}")
    return parts[3]


def _version(mv: Any) -> JsonObject:
    return {
        "name": mv.name,
        "version": str(mv.version),
        "source": mv.source,
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "tags": [{"key": k, "value": v} for k, v in sorted((mv.tags or {}).items())],
        "aliases": list(mv.aliases or []),
        "current_stage": mv.current_stage,
    }


def _tags(given: Json) -> list[Any]:
    """A request's ``tags`` (``[{"key": ..., "value": ...}]``) as MLflow's; ``TypeError``
    (answered 400) for anything else."""
    from mlflow.entities.model_registry import ModelVersionTag

    if not isinstance(given, list) or not all(isinstance(t, dict) for t in given):
        raise TypeError("tags: expected a list of {key, value} objects")
    return [
        ModelVersionTag(str(t["key"]), str(t["value"]))  # type: ignore[no-untyped-call]
        for t in given
        if isinstance(t, dict)
    ]


def _error(exc: Exception) -> Reply:
    code = str(getattr(exc, "error_code", "INTERNAL_ERROR"))
    status = {"RESOURCE_DOES_NOT_EXIST": 404, "RESOURCE_ALREADY_EXISTS": 400}.get(code, 400)
    if code == "INTERNAL_ERROR":
        status = 500
    return status, {"error_code": code, "message": str(getattr(exc, "message", exc))[:500]}


class RegistryApi:
    """The REST calls, each a function of the query (GET) or the JSON body (POST)."""

    def __init__(self, store: Any, region: str, replica: bool) -> None:
        self.store = store
        self.region = region
        self.replica = replica

    def get(self, path: str, query: dict[str, str]) -> Reply:
        if path == "/health":
            return 200, {"ok": True, "region": self.region, "replica": self.replica}
        if path == f"{API}/registered-models/alias":
            mv = self.store.get_model_version_by_alias(query["name"], query["alias"])
            return 200, {"model_version": _version(mv)}
        if path == f"{API}/registered-models/get":
            model = self.store.get_registered_model(query["name"])
            aliases = [{"alias": a, "version": str(v)} for a, v in sorted(model.aliases.items())]
            return 200, {"registered_model": {"name": model.name, "aliases": aliases}}
        if path == f"{API}/model-versions/search":
            found = self.store.search_model_versions(
                filter_string=query.get("filter"), max_results=int(query.get("max_results", 1000))
            )
            return 200, {"model_versions": [_version(mv) for mv in found]}
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": path}

    def post(self, path: str, body: JsonObject) -> Reply:
        writes: dict[str, Callable[[], Any]] = {
            f"{API}/registered-models/create": lambda: {
                "registered_model": {"name": self.store.create_registered_model(body["name"]).name}
            },
            f"{API}/model-versions/create": lambda: {
                "model_version": _version(
                    self.store.create_model_version(
                        body["name"],
                        body["source"],
                        tags=_tags(body.get("tags", [])),
                    )
                )
            },
            f"{API}/registered-models/alias": lambda: (
                self.store.set_registered_model_alias(
                    body["name"], body["alias"], str(body["version"])
                )
                or {}
            ),
            f"{API}/registered-models/delete": lambda: (
                self.store.delete_registered_model(body["name"]) or {}
            ),
        }
        write = writes.get(path)
        if write is None:
            return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": path}
        if self.replica:
            return 403, {
                "error_code": "PERMISSION_DENIED",
                "message": f"the registry of {self.region} is a read-only replica",
            }
        return 200, write()


def _handler(api: RegistryApi) -> type[JsonHandler]:
    from mlflow.exceptions import MlflowException

    class RegistryHandler(JsonHandler):
        def _answer(self, call: Callable[[], Reply]) -> None:
            try:
                status, payload = call()
            except MlflowException as exc:
                status, payload = _error(exc)
            except (KeyError, TypeError, ValueError) as exc:
                status = 400
                payload = {"error_code": "INVALID_PARAMETER_VALUE", "message": str(exc)}
            self.send_json(status, payload)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            self._answer(lambda: api.get(url.path, query))

        def do_POST(self) -> None:
            body = self.read_json()
            self._answer(lambda: api.post(urlparse(self.path).path, body))

    return RegistryHandler


def open_store(database: Path) -> Any:
    """MLflow's registry store on ``database`` (its tables created when new)."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    return SqlAlchemyStore(f"sqlite:///{database.resolve()}")  # type: ignore[no-untyped-call]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="aidrill-lab-registry")
    parser.add_argument("--region", required=True)
    parser.add_argument("--database", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--replica", action="store_true", help="answer reads only")
    args = parser.parse_args(argv)
    threading.Thread(target=exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    api = RegistryApi(open_store(args.database), args.region, args.replica)
    server = QuietServer(("127.0.0.1", args.port), _handler(api))
    print(f"READY {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
