"""Evidence integrity: a hash-chained SHA-256 manifest of every file in a report folder."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aidrill.errors import InputError

MANIFEST = "manifest.json"
_CHAIN_SEED = hashlib.sha256(b"aidrill-manifest/1").hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chain(previous: str, relative: str, digest: str) -> str:
    return hashlib.sha256(f"{previous}\n{relative}\n{digest}".encode()).hexdigest()


def hash_files(
    root: Path, paths: Iterable[Path], start: str = _CHAIN_SEED
) -> tuple[list[dict[str, Any]], str]:
    """Entries (path, size, sha256, chain) in the given order, and the chain's head."""
    entries = []
    head = start
    for path in paths:
        relative = path.relative_to(root).as_posix()
        digest = sha256_of(path)
        head = chain(head, relative, digest)
        entries.append(
            {"path": relative, "size": path.stat().st_size, "sha256": digest, "chain": head}
        )
    return entries, head


def files_under(root: Path, below: str | None = None) -> list[Path]:
    base = root / below if below else root
    return sorted(
        p
        for p in base.rglob("*")
        if p.is_file()
        and p.name != MANIFEST
        and not (below is None and p.relative_to(root).parts[0] == "evidence")
    )


def write_manifest(root: Path) -> dict[str, Any]:
    """Evidence first (its head is the evidence hash), then the report's own files."""
    evidence_entries, evidence_hash = hash_files(root, files_under(root, "evidence"))
    output_entries, head = hash_files(root, files_under(root), start=evidence_hash)
    manifest = {
        "schema": "aidrill.manifest/1",
        "algorithm": "sha256",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "chain": "chain[i] = sha256(chain[i-1] + '\\n' + path + '\\n' + sha256(file)); "
        "chain[-1] = sha256('aidrill-manifest/1'); evidence files first",
        "evidence_hash": evidence_hash,
        "manifest_hash": head,
        "files": evidence_entries + output_entries,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def evidence_hash_of(root: Path) -> str:
    return hash_files(root, files_under(root, "evidence"))[1]


@dataclass(frozen=True)
class Verification:
    changed: list[str]
    missing: list[str]
    added: list[str]
    chain_broken: bool

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added or self.chain_broken)


def verify_manifest(root: Path) -> Verification:
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        entries = manifest["files"]
    except FileNotFoundError:
        raise InputError("no manifest.json: not an aidrill report folder", file=path) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable manifest: {exc}", file=path) from exc
    recorded = {entry["path"]: entry for entry in entries}
    present = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    missing = sorted(set(recorded) - present)
    added = sorted(present - set(recorded))
    changed = sorted(
        name
        for name in set(recorded) & present
        if sha256_of(root / name) != recorded[name]["sha256"]
    )
    head = _CHAIN_SEED
    chain_broken = False
    for entry in entries:
        head = chain(head, entry["path"], entry["sha256"])
        chain_broken = chain_broken or head != entry["chain"]
    chain_broken = chain_broken or head != manifest.get("manifest_hash")
    return Verification(changed, missing, added, chain_broken)
