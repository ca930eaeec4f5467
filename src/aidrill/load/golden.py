"""Golden sets: their JSON Schema (``golden-set.schema.json`` beside this module, for
auditors' and teams' own tools) and the checks ``aidrill validate`` runs before anything
is sent: the schema, the fields the plan's protocol needs, and each request built."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
from jinja2 import TemplateError

from aidrill.load.protocols import protocol_for
from aidrill.load.scorers import compiled_pattern

if TYPE_CHECKING:
    from aidrill.plan import ProtocolSettings

SCHEMA_PATH = Path(__file__).with_name("golden-set.schema.json")
_SHOWN = 5  # problems listed, then a count


@cache
def golden_set_schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return document


def golden_set_problems(document: Any, protocol: ProtocolSettings | None = None) -> list[str]:
    """What is wrong with a golden set, one sentence each (the first few): against the
    schema, then, with the plan's protocol, what a request of each sample lacks."""
    validator = jsonschema.Draft202012Validator(golden_set_schema())
    problems = [
        f"{'/'.join(str(p) for p in error.absolute_path) or 'the golden set'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    ]
    if problems or protocol is None:
        return _shortened(problems)
    speaker = protocol_for(protocol)
    for index, sample in enumerate(document["samples"]):
        for need in speaker.needs():
            if not any(name in sample for name in need.split("|")):
                wanted = " or ".join(need.split("|"))
                problems.append(f"samples/{index}: the {protocol.kind} protocol needs {wanted}")
        if problems:
            continue
        try:
            body = speaker.body(sample)
            if "json" in speaker.content_type:
                json.loads(body)
        except (TemplateError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"samples/{index}: no {protocol.kind} request can be built: {exc}")
        expect = sample.get("expect") or {}
        if expect.get("scorer") == "regex":
            try:
                compiled_pattern(str(expect.get("value")), 0)
            except re.error as exc:
                problems.append(f"samples/{index}: expect.value is no regular expression: {exc}")
    return _shortened(problems)


def _shortened(problems: list[str]) -> list[str]:
    if len(problems) <= _SHOWN:
        return problems
    return [*problems[:_SHOWN], f"and {len(problems) - _SHOWN} more"]
