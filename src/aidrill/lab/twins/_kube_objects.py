"""Kubernetes objects as the twin's API servers hold them: JSON documents any client
may have changed (chaostoolkit-kubernetes cordons a Node, aidrill's own actions mark a
Pod). They stay JSON (``JsonObject``); these accessors read the few fields the twin
acts on and take a field that is missing or of another type as absent."""

from __future__ import annotations

from aidrill._json import Json, JsonObject


def section(obj: JsonObject, key: str) -> JsonObject:
    """``obj[key]`` where it is an object (``metadata``, ``spec``, ``status``), else {}."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def items(obj: JsonObject, key: str) -> list[JsonObject]:
    """The objects of the list ``obj[key]`` (conditions, containers), else []."""
    value = obj.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def name_of(obj: JsonObject) -> str:
    return str(section(obj, "metadata").get("name") or "")


def namespace_of(obj: JsonObject) -> str | None:
    namespace: Json = section(obj, "metadata").get("namespace")
    return None if namespace is None else str(namespace)


def condition_true(obj: JsonObject, kind: str) -> bool:
    """Whether ``status.conditions`` holds a ``kind`` condition with status True."""
    conditions = items(section(obj, "status"), "conditions")
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)
