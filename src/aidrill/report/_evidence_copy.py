"""Copying a run's files into a report's evidence bundle with no secret in them.

aidrill's own runs are redacted as they are written, but a plain Chaos Toolkit journal
holds its experiment's ``secrets`` (and secret-looking configuration) in clear, as
``chaos run`` writes them. Its copy in the bundle is redacted; the manifest keeps the
original's SHA-256 beside the copy's, so ``verify`` still proves what was read.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import yaml

from aidrill._documents import DocumentLimit, parse_bounded, read_bytes
from aidrill._redact import collect_secret_values, redact

if TYPE_CHECKING:
    from chaoslib.types import Experiment


_READ_LIMIT = 64 * 1024 * 1024


def copy_redacted(source: Path, destination: Path) -> str | None:
    """Copy ``source``; a journal or experiment holding secrets is written redacted.
    Returns the original's SHA-256 when the copy differs from it, else None."""
    if source.suffix not in (".json", ".yaml", ".yml"):
        shutil.copy2(source, destination, follow_symlinks=False)
        return None
    raw = read_bytes(source, _READ_LIMIT)
    digest = hashlib.sha256(raw).hexdigest()
    if digest not in _SAFE:  # a quarter's runs share plan and experiment copies
        if len(_SAFE) >= 512:
            _SAFE.clear()
        _SAFE[digest] = _redacted_text(raw, source.suffix)
    safe = _SAFE[digest]
    if safe is None:
        destination.write_bytes(raw)
        shutil.copystat(source, destination, follow_symlinks=False)
        return None
    destination.write_text(safe, encoding="utf-8")
    return digest


_SAFE: dict[str, str | None] = {}  # by the original's SHA-256: its redacted text, if any


def _parse(raw: bytes, suffix: str) -> Any:
    """JSON through orjson (every run holds several JSON files), else bounded YAML."""
    if suffix == ".json":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # NaN and friends: the YAML reader below takes them
    return parse_bounded(raw.decode("utf-8"))


def _redacted_text(raw: bytes, suffix: str) -> str | None:
    """The document with its secrets masked, or None when it holds none (or cannot be
    parsed: a file aidrill cannot read as a document is copied as it is)."""
    try:
        data: Any = _parse(raw, suffix)
    except (ValueError, yaml.YAMLError, DocumentLimit, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    inner = data.get("experiment")
    experiment: Experiment = inner if isinstance(inner, dict) else data
    safe = redact(data, collect_secret_values(experiment))
    if safe == data:
        return None
    if suffix == ".json":
        return json.dumps(safe, indent=2, default=str)
    return yaml.safe_dump(safe, sort_keys=False)
