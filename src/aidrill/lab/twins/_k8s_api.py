"""A Kubernetes API server on loopback for the lab's Kubernetes twin: kmock's emulator
(a test double of Kubernetes), completed where the official client and
chaostoolkit-kubernetes need more than it serves.

Added on kmock's own hooks: label and field selectors on lists and watches (without
them a selector matches every object, which would make any blast radius a lie),
``POST pods/{name}/eviction``, ``GET /version/``, a ``Status`` answer to a Node's
deletion, the ``scale`` subresource of Deployments, and ``uid``, ``resourceVersion``
and ``creationTimestamp`` on every object. Objects only keep their newest version and
the request log is trimmed, so a lab left up for days does not grow. Nothing
reconciles here: that is the twin's job.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import re
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp.web
import attrs
import kmock
from kmock import KubernetesEmulator, KubernetesError, ResourceInfo, resource

from aidrill._json import Json, JsonObject
from aidrill.lab.twins._kube_objects import section

T = TypeVar("T")
NODES = resource("", "v1", "nodes")
PODS = resource("", "v1", "pods")
NAMESPACES = resource("", "v1", "namespaces")
SERVICES = resource("", "v1", "services")
DEPLOYMENTS = resource("apps", "v1", "deployments")
REPLICASETS = resource("apps", "v1", "replicasets")
EVENTS = resource("", "v1", "events")
_RESOURCES = {
    NODES: ResourceInfo(kind="Node", singular="node", namespaced=False, subresources={"status"}),
    PODS: ResourceInfo(
        kind="Pod", singular="pod", namespaced=True, subresources={"status", "eviction"}
    ),
    NAMESPACES: ResourceInfo(kind="Namespace", singular="namespace", namespaced=False),
    SERVICES: ResourceInfo(kind="Service", singular="service", namespaced=True),
    DEPLOYMENTS: ResourceInfo(
        kind="Deployment", singular="deployment", namespaced=True, subresources={"scale", "status"}
    ),
    REPLICASETS: ResourceInfo(kind="ReplicaSet", singular="replicaset", namespaced=True),
    EVENTS: ResourceInfo(kind="Event", singular="event", namespaced=True),
}
_SCALE_META = ("name", "namespace", "uid", "resourceVersion")
_VERBS = {"get", "list", "watch", "create", "delete", "patch"}
_KEEP_REQUESTS = 64
_FIELDS = {
    "metadata.name": ("metadata", "name"),
    "metadata.namespace": ("metadata", "namespace"),
    "spec.nodeName": ("spec", "nodeName"),
    "spec.unschedulable": ("spec", "unschedulable"),
    "status.phase": ("status", "phase"),
}


class BadRequest(KubernetesError):
    def __init__(self, message: str) -> None:
        super().__init__(status=400, reason="BadRequest", message=message, details={})


# -- selectors ------------------------------------------------------------------------
@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # "!=" and "notin"


_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQUALITY = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


def parse_label_selector(text: str) -> list[Requirement]:
    """``app=inference,tier!=batch,env in (a,b),!legacy``: the requirements, all of
    which an object's labels must meet. A selector the API would refuse raises."""
    requirements: list[Requirement] = []
    for part in _split_outside_parentheses(text):
        if not part.strip():
            continue
        equality = _EQUALITY.match(part)
        if equality:
            key, op, value = equality.groups()
            requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            continue
        found = _SET.match(part)
        if not found:
            raise BadRequest(f"unable to parse requirement: {part.strip()!r}")
        negated, key, op, values = found.groups()
        if op:
            if negated:
                raise BadRequest(f"unable to parse requirement: {part.strip()!r}")
            members = tuple(v.strip() for v in values.split(",") if v.strip())
            requirements.append(Requirement(key, op, members))
        else:
            requirements.append(Requirement(key, "!exists" if negated else "exists"))
    return requirements


def _split_outside_parentheses(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def parse_field_selector(text: str) -> list[tuple[tuple[str, str], str, str]]:
    """``metadata.name=x,spec.nodeName!=y``: (field path, op, value) triples; a field
    the emulator does not index is refused, as the API refuses it."""
    found = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise BadRequest(f"invalid field selector: {part.strip()!r}")
        field, op, value = match.groups()
        if field not in _FIELDS:
            raise BadRequest(f"field label not supported: {field}")
        found.append((_FIELDS[field], "!=" if op == "!=" else "=", value))
    return found


def selected(obj: JsonObject, labels: list[Requirement], fields: list[Any]) -> bool:
    own = section(section(obj, "metadata"), "labels")
    if not all(r.matches({str(k): str(v) for k, v in own.items()}) for r in labels):
        return False
    for (part, key), op, value in fields:
        actual = section(obj, part).get(key)
        text = str(actual).lower() if isinstance(actual, bool) else str(actual or "")
        if (text == value) != (op == "="):
            return False
    return True


def _selection(params: Any) -> tuple[list[Requirement], list[Any]]:
    return (
        parse_label_selector(str(params.get("labelSelector") or "")),
        parse_field_selector(str(params.get("fieldSelector") or "")),
    )


def _truthy(value: Any) -> bool:
    return str(value) in ("1", "t", "T", "true", "TRUE", "True")


def _info(kind: resource | None) -> ResourceInfo:
    return _RESOURCES.get(kind, ResourceInfo()) if kind is not None else ResourceInfo()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str, **details: Json) -> JsonObject:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        "details": details,
    }


class LabKubernetes(KubernetesEmulator):
    """kmock's emulator with what chaostoolkit-kubernetes and the official client use."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for kind, info in _RESOURCES.items():
            info.verbs.update(_VERBS)
            self.resources[kind] = info
        self.versions = itertools.count(1)

    def _find(self, kind: resource, namespace: str | None, name: str | None) -> kmock.Object | None:
        if name is None or (kind, namespace, name) not in self._objects:
            return None
        return self._objects[kind, namespace, name]

    # -- the request hook ---------------------------------------------------------------
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        del self._requests[:-_KEEP_REQUESTS]
        for errors in self._errors:
            del errors[:-_KEEP_REQUESTS]
        if request.url.path.rstrip("/") == "/version":
            return aiohttp.web.json_response(await self._serve_server_version(request))
        if request.resource is None:
            return await super()._handle(request)
        if request.action == kmock.action.LIST and _truthy(request.params.get("watch")):
            # The official client sends watch=True; the API server parses it as Go
            # parses a bool, kmock only knows "true".
            request = self._replace(request, attrs.evolve(request, action=kmock.action.WATCH))
        if request.subresource == "eviction" and request.method == kmock.method.POST:
            return await self._evict(request)
        if request.subresource == "scale" and request.resource == DEPLOYMENTS:
            return await self._scale(request)
        if request.action in (kmock.action.LIST, kmock.action.WATCH):
            _selection(request.params)  # a malformed selector is a 400, as in the API
        self._stamp(request)
        response = await super()._handle(request)
        deleted_node = request.action == kmock.action.DELETE and request.resource == NODES
        if deleted_node and response.status == 200:
            return aiohttp.web.json_response(_status(200, "", "", name=request.name, kind="nodes"))
        return response

    def _replace(self, old: kmock.Request, new: kmock.Request) -> kmock.Request:
        """Put ``new`` where ``old`` was logged: kmock's reactions match the requests
        it logged, by identity."""
        for index in range(len(self._requests) - 1, -1, -1):
            if self._requests[index] is old:
                self._requests[index] = new
                break
        return new

    def _stamp(self, request: kmock.Request) -> None:
        """uid, creationTimestamp and resourceVersion, as the API server sets them."""
        if not isinstance(request.data, dict):
            return
        meta = request.data.setdefault("metadata", {})
        if not isinstance(meta, dict):
            return
        if request.action == kmock.action.CREATE:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", _now())
            if request.namespace and _info(request.resource).namespaced:
                meta.setdefault("namespace", request.namespace)
        if request.action in (kmock.action.CREATE, kmock.action.UPDATE):
            meta["resourceVersion"] = str(next(self.versions))

    async def _evict(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        key = (PODS, request.namespace, request.name)
        async with self._lock:
            pod = self._find(*key)
            if pod is None or pod.deleted:
                return aiohttp.web.json_response(
                    _status(404, "NotFound", f'pods "{request.name}" not found'), status=404
                )
            raw = copy.deepcopy(pod.raw)
            pod.delete()
            await self._buses[PODS].put({"type": "DELETED", "object": raw})
        return aiohttp.web.json_response(
            _status(201, "", "", name=request.name, kind="pods"), status=201
        )

    async def _scale(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        key = (DEPLOYMENTS, request.namespace, request.name)
        async with self._lock:
            deployment = self._find(*key)
            if deployment is None or deployment.deleted:
                return aiohttp.web.json_response(
                    _status(404, "NotFound", f'deployments.apps "{request.name}" not found'),
                    status=404,
                )
            if request.method == kmock.method.PATCH:
                replicas = ((request.data or {}).get("spec") or {}).get("replicas")
                if not isinstance(replicas, int) or replicas < 0:
                    raise BadRequest("spec.replicas: a whole number of replicas is required")
                version = str(next(self.versions))
                deployment.patch(
                    {"spec": {"replicas": replicas}, "metadata": {"resourceVersion": version}}
                )
                await self._buses[DEPLOYMENTS].put(
                    {"type": "MODIFIED", "object": copy.deepcopy(deployment.raw)}
                )
            raw = deployment.raw
        meta = raw.get("metadata") or {}
        return aiohttp.web.json_response(
            {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {k: meta.get(k) for k in _SCALE_META},
                "spec": {"replicas": (raw.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (raw.get("status") or {}).get("replicas", 0)},
            }
        )

    # -- lists and watches honour selectors ------------------------------------------------
    async def _serve_list(self, request: kmock.Request) -> Any:
        answer = await super()._serve_list(request)
        items: list[JsonObject] = answer["items"] if isinstance(answer, dict) else []
        labels, fields = _selection(request.params)
        kind = _info(request.resource).kind or "Object"
        return {
            "apiVersion": "apps/v1" if request.resource in (DEPLOYMENTS, REPLICASETS) else "v1",
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(next(self.versions))},
            "items": [o for o in items if selected(o, labels, fields)],
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        labels, fields = _selection(request.params)
        async for event in super()._serve_watch(request):
            if not isinstance(event, dict) or selected(event.get("object") or {}, labels, fields):
                yield event

    # -- what the twin calls (in the server's loop) -----------------------------------------
    async def store(self, kind: resource, namespace: str | None, body: JsonObject) -> None:
        """Create an object, or replace it whole (the twin's own writes)."""
        meta = section(body, "metadata")
        body["metadata"] = meta
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta["resourceVersion"] = str(next(self.versions))
        key = (kind, namespace, str(meta["name"]))
        async with self._lock:
            existing = self._find(*key)
            event = "ADDED" if existing is None or existing.deleted else "MODIFIED"
            self._objects[key] = body
            await self._buses[kind].put({"type": event, "object": copy.deepcopy(body)})

    async def amend(
        self, kind: resource, namespace: str | None, name: str, changes: JsonObject
    ) -> bool:
        key = (kind, namespace, name)
        async with self._lock:
            obj = self._find(*key)
            if obj is None or obj.deleted:
                return False
            version = str(next(self.versions))
            changes = {
                **changes,
                "metadata": {**section(changes, "metadata"), "resourceVersion": version},
            }
            obj.patch(changes)
            obj.history = [obj.last]
            await self._buses[kind].put({"type": "MODIFIED", "object": copy.deepcopy(obj.raw)})
            return True

    async def drop(self, kind: resource, namespace: str | None, name: str) -> bool:
        key = (kind, namespace, name)
        async with self._lock:
            obj = self._find(*key)
            if obj is None or obj.deleted:
                return False
            raw = copy.deepcopy(obj.raw)
            del self._objects[key]
            await self._buses[kind].put({"type": "DELETED", "object": raw})
            return True

    async def live(self, kind: resource) -> list[JsonObject]:
        """Copies of every live object of a kind; forgets deleted objects and every
        version but the newest (the emulator keeps a history for tests)."""
        async with self._lock:
            found = []
            for key, obj in list(self._objects.items()):
                if obj.deleted:
                    del self._objects[key]
                    continue
                if len(obj.history) > 1:
                    obj.history = [obj.last]
                if key[0] == kind:
                    found.append(copy.deepcopy(obj.raw))
            return found


class ApiServer:
    """One emulated API server on 127.0.0.1, its event loop in a thread of its own."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.api = LabKubernetes()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.port = 0
        self._failed: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"kube-{name}")

    def start(self) -> None:
        self.thread.start()
        if not self._ready.wait(15):
            raise RuntimeError(f"the Kubernetes API of {self.name} did not start")
        if self._failed is not None:
            raise RuntimeError(f"the Kubernetes API of {self.name} failed: {self._failed}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(); the thread ends either way
            self._failed = exc
            self._ready.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self.api, kmock.Server(self.api, host="127.0.0.1") as server:
            self.port = server.port
            self._ready.set()
            await self._stop.wait()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run one of the emulator's coroutines in its loop, from another thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        if self._stop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=10)
