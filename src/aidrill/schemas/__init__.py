"""JSON Schemas of the files aidrill writes for others to read, for auditors' tools:
``result.schema.json`` (a run's result.json) and ``manifest.schema.json`` (a report
folder's or a run directory's manifest.json). They are generated from the typed
records that write and read those files; ``python -m aidrill.schemas`` regenerates
them, and a test holds the shipped files equal to what the records say."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aidrill._manifest_record import schema as manifest_schema
from aidrill.measure import result_json_schema

HERE = Path(__file__).parent
SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "result.schema.json": result_json_schema,
    "manifest.schema.json": manifest_schema,
}


def render(name: str) -> str:
    return json.dumps(SCHEMAS[name](), indent=2, sort_keys=True) + "\n"


def shipped(name: str) -> Path:
    return HERE / name


def write_all(folder: Path = HERE) -> list[Path]:
    written = []
    for name in SCHEMAS:
        (folder / name).write_text(render(name), encoding="utf-8")
        written.append(folder / name)
    return written
