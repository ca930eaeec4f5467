"""Reading YAML/JSON documents, bounded, with enough position data to point at a field.

Every document is read within limits before it is parsed: only regular files (a FIFO,
a device or a directory is refused by name, without blocking on it), a size limit, a
nesting-depth limit and a limit on what alias expansion may add up to (a "billion
laughs" is refused while it is composed, never expanded). Duplicate keys are an error
naming both lines. Line numbers are looked up only when an error needs one.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from aidrill.errors import InputError

M = TypeVar("M", bound=BaseModel)
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
MAX_EXPANDED_NODES = 200_000


class UnreadableFile(OSError):
    """A file that must not be read as a document (not regular, or too large)."""


def read_bytes(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of a regular file no larger than ``limit``; anything else is refused
    by name. A FIFO is opened without blocking, so it never hangs the caller."""
    info = os.stat(path)  # follows a symlink: what it points at is what would be read
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile(f"not a regular file ({_kind(info.st_mode)})")
    if info.st_size > limit:
        raise UnreadableFile(f"too large ({info.st_size:,} bytes; the limit is {limit:,})")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the stat above
            raise UnreadableFile("not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise UnreadableFile(f"too large (more than {limit:,} bytes)")
    return b"".join(chunks)


def read_text(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> str:
    return read_bytes(path, limit).decode("utf-8")


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"


class DocumentLimit(Exception):
    """A document beyond a limit, or with a duplicate key; ``line`` is 1-based."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that refuses deep nesting and duplicate keys while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise DocumentLimit(
                    f"nested too deep (more than {MAX_DEPTH} levels)", mark.line + 1
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        node: yaml.MappingNode = super().compose_mapping_node(anchor)
        seen: dict[Any, int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            line = key.start_mark.line + 1
            if key.value in seen:
                raise DocumentLimit(
                    f"duplicate key {key.value!r} (lines {seen[key.value]} and {line})", line
                )
            seen[key.value] = line
        return node


def compose_bounded(text: str) -> yaml.Node | None:
    """Compose one YAML (or JSON) document within the depth, duplicate-key and alias
    expansion limits."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is not None:
        expanded = _expanded_size(node, {})
        if expanded > MAX_EXPANDED_NODES:
            raise DocumentLimit(
                f"aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb?)",
                node.start_mark.line + 1,
            )
    return node


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes the document holds once every alias is expanded; each distinct
    node is visited once, so a bomb is sized without being expanded."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # a node reached again through itself counts once
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, memo) + _expanded_size(value, memo)
            if size > MAX_EXPANDED_NODES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, memo)
            if size > MAX_EXPANDED_NODES:
                break
    memo[id(node)] = size
    return size


def parse_bounded(text: str) -> Any:
    """YAML or JSON text as data, within the depth and alias-expansion limits."""
    return _construct(compose_bounded(text))


def _construct(node: yaml.Node | None) -> Any:
    if node is None:
        return None
    loader = _BoundedLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


@dataclass(frozen=True)
class Document:
    """A parsed file; the line of a field is looked up only when an error needs it."""

    path: Path
    data: Any
    text: str = ""
    node: yaml.Node | None = None

    def line_of(self, location: Sequence[str | int]) -> int | None:
        """Line (1-based) of the deepest known node on ``location``."""
        node = self.node
        if node is None and self.text:
            try:
                node = compose_bounded(self.text)
            except (yaml.YAMLError, DocumentLimit, RecursionError):
                return None
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in location:
            child = _child(node, part)
            if child is None:
                break
            line, node = child
        return line


def _child(node: yaml.Node, part: str | int) -> tuple[int, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if str(key.value) == str(part):
                return key.start_mark.line + 1, value
    elif (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None


def read_document(
    path: Path, error: type[InputError] = InputError, limit: int = MAX_DOCUMENT_BYTES
) -> Document:
    """Parse ``path`` as YAML (JSON is YAML too) with safe loading only, within limits."""
    try:
        text = read_text(path, limit)
    except FileNotFoundError:
        raise error("file not found", file=path) from None
    except UnicodeDecodeError as exc:
        raise error(f"cannot read file: not UTF-8 text ({exc.reason})", file=path) from exc
    except OSError as exc:
        raise error(f"cannot read file: {exc.strerror or exc}", file=path) from exc
    if path.suffix == ".json":
        return Document(path, _parse_json(text, path, error), text=text)
    try:
        node = compose_bounded(text)
        data = _construct(node)
    except DocumentLimit as exc:
        raise error(exc.message, file=path, line=exc.line) from None
    except yaml.constructor.ConstructorError as exc:
        # Safe loading refuses every tag it does not know (!!python/object, !Ref, ...):
        # named here, never constructed.
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise error(
            f"refused YAML: {exc.problem} (only plain YAML is read; tags that build objects "
            "are never constructed)",
            file=path,
            line=line,
            column=column,
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise error(f"malformed YAML: {exc.problem}", file=path, line=line, column=column) from exc
    except yaml.YAMLError as exc:
        raise error(f"malformed YAML: {exc}", file=path) from exc
    except RecursionError:
        raise error(f"nested too deep (more than {MAX_DEPTH} levels)", file=path) from None
    return Document(path, data, text=text, node=node)


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _parse_json(text: str, path: Path, error: type[InputError]) -> Any:
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise error(f"malformed JSON: {exc.msg}", file=path, line=exc.lineno) from exc
    except RecursionError:
        raise error(
            f"nested too deep (more than {MAX_DEPTH} levels)",
            file=path,
            line=_line_past_depth(text),
        ) from None
    except _DuplicateKey as exc:
        try:  # the YAML composer knows the lines of both keys
            compose_bounded(text)
        except DocumentLimit as limit:
            raise error(limit.message, file=path, line=limit.line) from None
        except (yaml.YAMLError, RecursionError):
            pass
        raise error(f"duplicate key {exc.args[0]!r}", file=path) from None
    if _depth_of(data) > MAX_DEPTH:
        raise error(
            f"nested too deep (more than {MAX_DEPTH} levels)",
            file=path,
            line=_line_past_depth(text),
        )
    return data


def _depth_of(data: Any) -> int:
    deepest = 0
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _line_past_depth(text: str) -> int | None:
    """The line where JSON nesting first goes past MAX_DEPTH (strings skipped)."""
    depth, line, in_string, escaped = 0, 1, False, False
    for char in text:
        if char == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif char in "]}":
            depth -= 1
    return None


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


_LISTED_PROBLEMS = 50  # a file with more than this says how many more there are


def raise_validation_error(
    document: Document,
    exc: ValidationError,
    error: type[InputError],
    prefix: Sequence[str | int] = (),
) -> None:
    """Turn pydantic's error list into one InputError naming file, line and field of
    the first problem, and listing every other one (each with its line and field)."""
    problems = [_problem(document, e, prefix) for e in exc.errors()]
    first_line, first_field, first_message = problems[0]
    message = first_message
    if len(problems) > 1:
        shown = problems[1:_LISTED_PROBLEMS]
        extra = "".join(
            f"\n  {document.path}{f':{line}' if line else ''}: {f'{name}: ' if name else ''}{text}"
            for line, name, text in shown
        )
        more = len(problems) - 1 - len(shown)
        message += f"\n  and {len(problems) - 1} more problem(s):{extra}"
        if more > 0:
            message += f"\n  … and {more} more"
    raise error(message, file=document.path, line=first_line, field=first_field) from exc


def _problem(
    document: Document, failure: Any, prefix: Sequence[str | int]
) -> tuple[int | None, str | None, str]:
    location = (*prefix, *failure["loc"])
    field_name = ".".join(str(part) for part in location) or None
    message = str(failure["msg"]).removeprefix("Value error, ")
    if failure["type"] == "extra_forbidden":
        message = "unknown key"
    elif failure["type"] == "missing":
        message = "required field is missing"
    return document.line_of(location), field_name, message
