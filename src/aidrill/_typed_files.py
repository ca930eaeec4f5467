"""What the typed records of aidrill's files share: how a file that does not fit its
record is put into words, and how a record's JSON Schema is shipped."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from aidrill._json import JsonOut


def misfit(exc: ValidationError, what: str) -> ValueError:
    """``where: why`` of the first field that does not fit (and how many others do not)."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or what
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValueError(f"{where}: {first['msg']}{more}")


def shipped_schema(model: type[BaseModel], name: str, title: str) -> dict[str, JsonOut]:
    """The JSON Schema (draft 2020-12) of the file ``model`` writes, as shipped."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://aidrill.dev/schemas/{name}",
        "title": title,
        **model.model_json_schema(by_alias=True, mode="serialization"),
    }
