"""Reading YAML/JSON documents with enough position data to point at a bad field."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from aidrill.errors import InputError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Document:
    """A parsed file plus the line of every mapping key and list item in it."""

    path: Path
    data: Any
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def line_of(self, location: Sequence[str | int]) -> int | None:
        """Line (1-based) of the deepest known node on ``location``."""
        loc = tuple(location)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return None


def read_document(path: Path, error: type[InputError] = InputError) -> Document:
    """Parse ``path`` as YAML (JSON is YAML too) with safe loading only."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read file: {exc}", file=path) from exc
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"malformed JSON: {exc.msg}", file=path, line=exc.lineno) from exc
        json_lines: dict[tuple[str | int, ...], int] = {}
        try:  # JSON is YAML: its node positions give the line of a bad field
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            if node is not None:
                _index_lines(node, (), json_lines)
        except yaml.YAMLError:
            json_lines = {}
        return Document(path, data, json_lines)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise error(f"malformed YAML: {exc.problem}", file=path, line=line) from exc
    except yaml.YAMLError as exc:
        raise error(f"malformed YAML: {exc}", file=path) from exc
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return Document(path, data, lines)


def _index_lines(
    node: yaml.Node, location: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]
) -> None:
    lines[location] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*location, str(key.value))
            lines[child] = key.start_mark.line + 1
            _index_lines(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*location, index), lines)


def validate_as(
    document: Document, model: type[M], error: type[InputError], not_a_mapping: str
) -> M:
    """Validate a document against a model; every failure is one ``error`` naming the
    file, the line and the field."""
    if not isinstance(document.data, dict):
        raise error(not_a_mapping, file=document.path)
    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        raise_validation_error(document, exc, error)
        raise  # unreachable: raise_validation_error always raises


def raise_validation_error(
    document: Document,
    exc: ValidationError,
    error: type[InputError],
    prefix: Sequence[str | int] = (),
) -> None:
    """Turn pydantic's error list into one InputError naming file, line and field."""
    first = exc.errors()[0]
    location = (*prefix, *first["loc"])
    field_name = ".".join(str(part) for part in location) or None
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required field is missing"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    raise error(
        message, file=document.path, line=document.line_of(location), field=field_name
    ) from exc
