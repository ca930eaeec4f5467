"""One GPU node of the lab: a separate OS process serving the model over HTTP.

At boot the node resolves the production model through its region's model registry
(``--model name@alias``: the alias names a version, the version its artifact's key and
checksum), fetches the artifact from its region's artifact store (the S3 API, through
the storage fault proxy) and verifies it against both; while the registry does not
answer or the artifact is missing or corrupt it says ``WAITING`` and retries every half
second, as a model server's loader does, and its boot fails (``REFUSED``) if none
verifies in time. Once serving it follows the alias each second and loads the version
it moves to; a registry that does not answer leaves the loaded model serving. Each
request carries an entity id and a few request-time features; the entity's other
features are read from the online feature store, falling back to defaults when missing
or stale.

The GPU is simulated by a lock held for the node's service time per request, so a
node has a real, finite throughput; a kill of this process is a real crash.
Run as ``python -m aidrill.lab.serving.worker``; it prints ``READY <port>`` once serving and
exits by itself if its supervisor (the parent process) goes away.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

import numpy as np
import redis

from aidrill._artifact import ArtifactRefused, fetch_verified  # botocore only: no boto3 in a node
from aidrill.lab._http import JsonHandler, QuietServer, exit_when_orphaned
from aidrill.lab.data._redis import redis_client
from aidrill.lab.data.registry import RegistryError, resolve_alias, source_key
from aidrill.lab.serving._model import (
    FEATURES,
    REQUEST_FEATURES,
    Model,
    mislabelled,
    model_from_bytes,
)
from aidrill.lab.serving._node_faults import NodeFault
from aidrill.lab.serving._node_protocols import (
    TOKEN_GAP_SHARE,
    NodeRequest,
    answer_words,
    parse_request,
    stream_end,
    stream_event,
    whole_reply,
)

ENTITY_FEATURES = FEATURES - REQUEST_FEATURES
_MODEL_RETRY = 0.5
_ALIAS_POLL = 1.0
# How old the features behind an answer are: the load records it per bucket.
FEATURE_AGE_HEADER = "X-Aidrill-Feature-Age"
NODE_HEADER = "X-Aidrill-Node"  # the node that served: the balancer and router pass it on
_DEFAULTS = [0.0] * ENTITY_FEATURES


def resolve_entity_features(
    raw: bytes | None, now: float, max_age: float
) -> tuple[list[float], str]:
    """The entity's stored features, or defaults when missing, malformed or stale."""
    if raw is None:
        return _DEFAULTS, "missing"
    try:
        row = json.loads(raw)
        values = [float(x) for x in row["v"]]
        written = float(row["ts"])
    except (ValueError, KeyError, TypeError):
        return _DEFAULTS, "missing"
    if len(values) != ENTITY_FEATURES:
        return _DEFAULTS, "missing"
    if now - written > max_age:
        return _DEFAULTS, "stale"
    return values, "online"


def feature_age(raw: bytes | None, now: float) -> float | None:
    """How old the stored row is (seconds since it was written); None when unknown."""
    if raw is None:
        return None
    try:
        return max(0.0, now - float(json.loads(raw)["ts"]))
    except (ValueError, KeyError, TypeError):
        return None


class FeatureReader:
    def __init__(self, port: int, max_age: float) -> None:
        self.max_age = max_age
        self.client = redis_client(port, 0.2)

    def read(self, entity: str) -> tuple[list[float], str, float | None]:
        """The entity's features, where they came from, and how old the stored row is."""
        try:
            raw: Any = self.client.get(f"feature:{entity}")
        except (redis.RedisError, OSError):
            return _DEFAULTS, "unavailable", None
        now = time.time()
        values, source = resolve_entity_features(raw, now, self.max_age)
        return values, source, feature_age(raw, now)


class ModelSource:
    """Where the node's model comes from: its region's registry alias (or, without a
    registry, the current ``models/model.npz``) and its region's artifact store."""

    def __init__(self, s3_port: int, bucket: str, registry_port: int | None, model: str) -> None:
        self.s3_port, self.bucket = s3_port, bucket
        self.registry_port = registry_port
        self.name, _, self.alias = model.partition("@")

    def version(self) -> str:
        """The registry version the alias names now (raises when it does not answer)."""
        if self.registry_port is None:
            return "artifact"
        return resolve_alias(self.registry_port, self.name, self.alias).version

    def fetch(self) -> tuple[Model, str, dict[str, str]]:
        """Resolve, fetch and verify: the model, its registry version and its metadata."""
        if self.registry_port is None:
            body, metadata = fetch_verified(self.s3_port, self.bucket)
            return model_from_bytes(body), "artifact", metadata
        try:
            found = resolve_alias(self.registry_port, self.name, self.alias)
            key = source_key(found.source)
        except RegistryError as exc:
            raise ArtifactRefused(str(exc)) from None
        except OSError as exc:
            raise ArtifactRefused(f"the model registry does not answer: {exc}") from None
        body, metadata = fetch_verified(self.s3_port, self.bucket, key=key)
        registered = found.tags.get("sha256")
        if registered is not None and registered != metadata.get("sha256"):
            raise ArtifactRefused(
                f"{key} does not match the checksum registered for version {found.version}"
            )
        return model_from_bytes(body), found.version, metadata


class Serving:
    """The loaded model and its registry version, swapped whole when the alias moves."""

    def __init__(self, model: Model, version: str) -> None:
        self.current = (model, version)

    def follow(self, source: ModelSource, stop: threading.Event) -> None:
        while not stop.wait(_ALIAS_POLL):
            try:
                if source.version() == self.current[1]:
                    continue
                model, version, _ = source.fetch()
            except (ArtifactRefused, RegistryError, OSError, ValueError, KeyError):
                continue  # keep serving what is loaded; try again next second
            self.current = (model, version)


def _make_handler(
    serving: Serving,
    features: FeatureReader,
    region: str,
    node: str,
    service_time: float,
    fault: NodeFault,
) -> type[JsonHandler]:
    gpu = threading.Lock()

    class NodeHandler(JsonHandler):
        def do_GET(self) -> None:
            # Whatever the node's fault, its health check reports what it was told to
            # serve: a health endpoint that lies, as the blind faults' servers' do.
            if self.path == "/healthz":
                self.send_json(200, {"ok": True, "region": region, "node": node,
                                     "model_version": serving.current[1]})  # fmt: skip
            else:
                self.send_json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path == NodeFault.ADMIN_PATH:
                try:
                    self.send_json(200, fault.set(self.read_json()))
                except ValueError as exc:
                    self.send_json(400, {"error": str(exc)})
                return
            try:
                request = parse_request(self.path, self.read_json())
            except (ValueError, KeyError, TypeError, IndexError):
                self.send_json(400, {"error": f"cannot read this request to {self.path}"})
                return
            if request is None:
                self.send_json(404, {"error": "not found"})
                return
            if len(request.features) != REQUEST_FEATURES:
                self.send_json(400, {"error": f"expected {REQUEST_FEATURES} request features"})
                return
            refusal = fault.refusal()
            if refusal is not None:
                self.send_json(*refusal)
                return
            stored, source, age = features.read(request.entity)
            model = serving.current[0]
            if fault.wrong_model:
                model = mislabelled(model)
            with gpu:
                started = time.perf_counter()
                label = int(model.predict(np.asarray(request.features + stored, dtype=float)))
                remaining = fault.service_time(service_time) - (time.perf_counter() - started)
                if remaining > 0:
                    time.sleep(remaining)
                failed = fault.fails_now()
            if failed is not None:
                self.send_json(*failed)
                return
            headers = {"X-Aidrill-Region": region, NODE_HEADER: node}
            if age is not None:
                headers[FEATURE_AGE_HEADER] = f"{age:.3f}"
            if request.kind == "predict":
                answer = {"label": label, "region": region, "node": node, "features": source}
                self.send_json(200, answer, headers=headers)
            elif request.stream:
                self._stream(request, label, headers, fault.service_time(service_time))
            else:
                self.send_json(200, whole_reply(request, label, node), headers=headers)

        def _stream(
            self, request: NodeRequest, label: int, headers: dict[str, str], service: float
        ) -> None:
            """The answer as server-sent events, one token each, a gap apart: the first
            leaves now (after the GPU's service time), the GPU free meanwhile."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            words = answer_words(label)
            for index, word in enumerate(words):
                if index:
                    time.sleep(service * TOKEN_GAP_SHARE)
                self._chunk(stream_event(request, word, node))
            self._chunk(stream_end(request, len(words), node))
            self._chunk(b"")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    return NodeHandler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="aidrill-lab-worker")
    parser.add_argument("--region", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--s3-port", required=True, type=int)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--registry-port", type=int, help="the region's model registry")
    parser.add_argument("--model", default="lab-model@production", help="name@alias")
    parser.add_argument("--features-port", required=True, type=int)
    parser.add_argument("--feature-max-age", type=float, default=30.0)
    parser.add_argument("--service-time", type=float, default=0.08)
    parser.add_argument(
        "--model-wait", type=float, default=12.0, help="seconds to wait for a model that verifies"
    )
    args = parser.parse_args(argv)
    threading.Thread(target=exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    source = ModelSource(args.s3_port, args.bucket, args.registry_port, args.model)
    deadline = time.monotonic() + args.model_wait
    waiting = False
    while True:
        started = time.perf_counter()
        try:
            model, version, metadata = source.fetch()
            break
        except (ArtifactRefused, OSError) as exc:
            if time.monotonic() >= deadline:
                print(f"REFUSED {exc}", flush=True)
                sys.exit(3)
            if not waiting:
                print(f"WAITING {exc}", flush=True)
                waiting = True
            time.sleep(_MODEL_RETRY)
    serving = Serving(model, version)
    if args.registry_port is not None:
        threading.Thread(
            target=serving.follow, args=(source, threading.Event()), daemon=True
        ).start()
    reader = FeatureReader(args.features_port, args.feature_max_age)
    fault = NodeFault()
    handler = _make_handler(serving, reader, args.region, args.node, args.service_time, fault)
    server = QuietServer(("127.0.0.1", 0), handler)
    load_seconds = time.perf_counter() - started
    print(f"READY {server.server_address[1]} {metadata.get('version', '?')} {load_seconds:.3f}",
          flush=True)  # fmt: skip
    sys.stdout.close()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
