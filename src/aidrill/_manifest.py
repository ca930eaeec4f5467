"""Evidence integrity: a hash-chained SHA-256 manifest of every file in a report folder."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aidrill._manifest_record import (
    MANIFEST_SCHEMA,
    Generator,
    LinkNotCopied,
    Manifest,
    ManifestFile,
    RunSeal,
)
from aidrill.errors import InputError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig.json"  # signs the manifest, so the manifest cannot list it
# Sign-offs name the manifest they accept (by its hash), so the manifest cannot list
# them either: each later sign-off is appended and none changes what earlier ones signed.
SIGNOFFS = "signoffs.json"
_CHAIN_SEED = hashlib.sha256(b"aidrill-manifest/1").hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chain(previous: str, relative: str, digest: str) -> str:
    return hashlib.sha256(f"{previous}\n{relative}\n{digest}".encode()).hexdigest()


@dataclass(frozen=True)
class FileNote:
    """What the manifest says of one path beyond its hash: a copy with secrets redacted
    (the original's SHA-256 kept beside), or a link found in a run and never copied."""

    original_sha256: str | None = None  # set: a redacted copy
    link: str | None = None  # set: a link, listed apart from the files


def hash_files(
    root: Path,
    paths: Iterable[Path],
    start: str = _CHAIN_SEED,
    notes: dict[str, FileNote] | None = None,
) -> tuple[list[ManifestFile], str]:
    """Entries (path, size, sha256, chain) in the given order, and the chain's head; a
    copy that was redacted carries the original's SHA-256 from ``notes``."""
    entries = []
    head = start
    for path in paths:
        relative = path.relative_to(root).as_posix()
        digest = sha256_of(path)
        head = chain(head, relative, digest)
        size, note = path.stat().st_size, (notes or {}).get(relative)
        if note is not None and note.original_sha256 is not None:
            entry = ManifestFile(path=relative, size=size, sha256=digest, chain=head,
                                 redacted=True, original_sha256=note.original_sha256)  # fmt: skip
        else:
            entry = ManifestFile(path=relative, size=size, sha256=digest, chain=head)
        entries.append(entry)
    return entries, head


def _walk(base: Path) -> tuple[list[Path], list[Path]]:
    """(regular files, anything else) under ``base``, never following a link."""
    regular: list[Path] = []
    other: list[Path] = []
    for folder, dirs, names in os.walk(base, followlinks=False):
        here = Path(folder)
        other += [here / d for d in dirs if (here / d).is_symlink()]
        for name in names:
            item = here / name
            (regular if stat.S_ISREG(item.lstat().st_mode) else other).append(item)
    return sorted(regular), sorted(other)


def files_under(root: Path, below: str | None = None) -> list[Path]:
    base = root / below if below else root
    own = {root / MANIFEST, root / SIGNATURE, root / SIGNOFFS}  # a copied run's seal is evidence
    return [
        p
        for p in _walk(base)[0]
        if p not in own and not (below is None and p.relative_to(root).parts[0] == "evidence")
    ]


def generator_record(generated_at: str | None = None) -> Generator:
    """Who made the report, with what, where and how: kept in the manifest."""
    from aidrill import __version__

    try:
        operator = getpass.getuser()
    except (KeyError, OSError):
        operator = "unknown"
    return Generator(
        tool="aidrill",
        version=__version__,
        operator=operator,
        host=platform.node(),
        command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        generated_at=generated_at or datetime.now(UTC).isoformat(timespec="seconds"),
    )


def notes_of(root: Path) -> dict[str, FileNote]:
    """The per-file notes (redacted copies, links not copied) of an existing manifest."""
    manifest = Manifest.read(root / MANIFEST)
    notes = {
        e.path: FileNote(original_sha256=e.original_sha256)
        for e in manifest.files
        if e.redacted and e.original_sha256
    }
    for link in manifest.links_not_copied:
        notes[link.path] = FileNote(link=link.link)
    return notes


def write_manifest(
    root: Path,
    notes: dict[str, FileNote] | None = None,
    generator: Generator | None = None,
    runs: list[RunSeal] | None = None,
) -> Manifest:
    """Evidence first (its head is the evidence hash), then the report's own files.
    Links found in a run (recorded in ``notes``, never copied) are listed apart."""
    evidence_entries, evidence_hash = hash_files(root, files_under(root, "evidence"), notes=notes)
    output_entries, head = hash_files(root, files_under(root), start=evidence_hash)
    links = [
        LinkNotCopied(path=path, link=note.link)
        for path, note in sorted((notes or {}).items())
        if note.link is not None
    ]
    # Each run's own manifest head, as the run sealed it (``runs``): the chain of custody
    # starts when a run is recorded, not when a report is written.
    chained = {} if runs is None else {"runs": runs}
    manifest = Manifest(
        schema=MANIFEST_SCHEMA,
        algorithm="sha256",
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        chain="chain[i] = sha256(chain[i-1] + '\\n' + path + '\\n' + sha256(file)); "
        "chain[-1] = sha256('aidrill-manifest/1'); evidence files first",
        evidence_hash=evidence_hash,
        manifest_hash=head,
        generator=generator or generator_record(),
        files=evidence_entries + output_entries,
        links_not_copied=links,
        **chained,
    )
    (root / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2), encoding="utf-8")
    return manifest


def evidence_hash_of(root: Path) -> str:
    return hash_files(root, files_under(root, "evidence"))[1]


@dataclass(frozen=True)
class Verification:
    changed: list[str]
    missing: list[str]
    added: list[str]
    chain_broken: bool
    links: list[str] = field(default_factory=list)  # a link or special file in the folder
    recorded_links: list[str] = field(default_factory=list)  # links the report left out
    redacted: list[str] = field(default_factory=list)  # copies that differ from originals

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added or self.chain_broken or self.links)


def verify_manifest(root: Path) -> Verification:
    path = root / MANIFEST
    try:
        manifest = Manifest.read(path)
    except FileNotFoundError:
        raise InputError(
            "no manifest.json: not an aidrill report folder or run directory", file=path
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable manifest: {exc}", file=path) from exc
    entries = manifest.files
    recorded = {entry.path: entry for entry in entries}
    regular, other = _walk(root)
    present = {p.relative_to(root).as_posix() for p in regular} - {MANIFEST, SIGNATURE, SIGNOFFS}
    links = [
        f"{p.relative_to(root).as_posix()}"
        + (f" -> {os.readlink(p)}" if p.is_symlink() else " (not a regular file)")
        for p in other
    ]
    missing = sorted(set(recorded) - present)
    added = sorted(present - set(recorded))
    changed = sorted(
        name for name in set(recorded) & present if sha256_of(root / name) != recorded[name].sha256
    )
    head = _CHAIN_SEED
    chain_broken = False
    for entry in entries:
        head = chain(head, entry.path, entry.sha256)
        chain_broken = chain_broken or head != entry.chain
    chain_broken = chain_broken or head != manifest.manifest_hash
    recorded_links = [f"{item.path} -> {item.link}" for item in manifest.links_not_copied]
    redacted = [e.path for e in entries if e.redacted]
    return Verification(changed, missing, added, chain_broken, links, recorded_links, redacted)


def run_changes(run_dir: Path, copied_from: dict[str, str] | None = None) -> list[str]:
    """What changed in a run directory since the run sealed it (empty: nothing; a run
    recorded before runs were sealed has no manifest and says so). ``copied_from`` maps
    a redacted copy's name to its original's SHA-256 (a report's copy of the run)."""
    try:
        recorded = {e.path: e.sha256 for e in Manifest.read(run_dir / MANIFEST).files}
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        return [f"its manifest is unreadable: {exc}"]
    regular, _ = _walk(run_dir)
    present = {p.relative_to(run_dir).as_posix() for p in regular}
    present -= {MANIFEST, SIGNATURE}
    found = [f"{name} is gone" for name in sorted(set(recorded) - present)]
    found += [f"{name} was added" for name in sorted(present - set(recorded))]
    for name in sorted(set(recorded) & present):
        digest = (copied_from or {}).get(name) or sha256_of(run_dir / name)
        if digest != recorded[name]:
            found.append(f"{name} changed")
    return [f"{item} after the run sealed it" for item in found]


def run_seal(run_dir: Path, run: str) -> RunSeal:
    """The run manifest's head and who signed it, for the quarterly manifest's chain
    (no head: the run was never sealed, or its manifest cannot be read)."""
    try:
        manifest = Manifest.read(run_dir / MANIFEST)
    except (OSError, ValueError):
        return RunSeal(run=run, manifest_hash=None)
    signed = None
    try:
        signature = json.loads((run_dir / SIGNATURE).read_text(encoding="utf-8"))
        signed = signature.get("key_fingerprint")
    except (OSError, ValueError):
        pass
    return RunSeal(
        run=run, manifest_hash=manifest.manifest_hash, signed_by=str(signed) if signed else None
    )


def runs_changed_since_sealed(folder: Path) -> dict[str, list[str]]:
    """For a report folder, each copied run whose files differ from what the run's own
    manifest sealed (a redacted copy is checked by its original's hash, which the
    report's manifest keeps)."""
    if (folder / "evidence" / "runs").is_dir():
        try:
            entries = Manifest.read(folder / MANIFEST).files
        except (OSError, ValueError):
            entries = []
        originals = {e.path: e.original_sha256 for e in entries if e.redacted and e.original_sha256}
        found = {}
        for run in sorted(p for p in (folder / "evidence" / "runs").iterdir() if p.is_dir()):
            prefix = run.relative_to(folder).as_posix() + "/"
            copied = {
                k.removeprefix(prefix): v for k, v in originals.items() if k.startswith(prefix)
            }
            changes = run_changes(run, copied)
            if changes:
                found[run.name] = changes
        return found
    return {}  # a run directory: verify_manifest checks it against its own manifest
