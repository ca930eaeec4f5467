"""Signed evidence: a detached Ed25519 signature over manifest.json, and sign-offs.

The manifest proves every file by its SHA-256; the signature proves the manifest, so
a report folder can only be changed by someone who holds the team's private key.
``aidrill keygen`` makes the key pair; ``aidrill report --sign-key`` and ``aidrill
report sign`` sign; ``aidrill verify --key`` checks. Sign-offs (who, in what role, when,
what they state, which manifest) are appended to ``signoffs.json``, each signed on its
own when a key is given; the manifest does not list them, so none undoes another.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aidrill._json import JsonObject
from aidrill._manifest import SIGNATURE as SIGNATURE_FILE
from aidrill._manifest import write_manifest
from aidrill._manifest_record import Manifest
from aidrill.errors import InputError

SIGNOFFS_FILE = "signoffs.json"
_ALGORITHM = "ed25519"


def generate_key_pair(private_path: Path) -> Path:
    """Write a new private key (owner-only) and its public key next to it (``.pub``)."""
    if private_path.exists():
        raise InputError("a key already exists here; refusing to overwrite it", file=private_path)
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    public_path = private_path.with_name(private_path.name + ".pub")
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public_path


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:32]


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"cannot read the signing key: {exc}", file=path) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError("the signing key is not an Ed25519 key", file=path)
    return key


def _load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"cannot read the public key: {exc}", file=path) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("the public key is not an Ed25519 key", file=path)
    return key


def sign_manifest(folder: Path, private_path: Path) -> str:
    """Sign the folder's manifest.json as it is now; return the key's fingerprint."""
    key = _load_private(private_path)
    manifest = (folder / "manifest.json").read_bytes()
    record = {
        "algorithm": _ALGORITHM,
        "signed": "manifest.json",
        "key_fingerprint": fingerprint(key.public_key()),
        "signed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "signature": base64.b64encode(key.sign(manifest)).decode(),
    }
    (folder / SIGNATURE_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return str(record["key_fingerprint"])


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    detail: str


def check_signature(folder: Path, public_path: Path) -> SignatureCheck:
    """Whether manifest.json carries a valid signature by the key at ``public_path``."""
    key = _load_public(public_path)
    try:
        record = json.loads((folder / SIGNATURE_FILE).read_text(encoding="utf-8"))
        signature = base64.b64decode(record["signature"])
    except FileNotFoundError:
        return SignatureCheck(False, f"no {SIGNATURE_FILE}: the manifest is not signed")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return SignatureCheck(False, f"unreadable {SIGNATURE_FILE}: {exc}")
    try:
        key.verify(signature, (folder / "manifest.json").read_bytes())
    except InvalidSignature:
        return SignatureCheck(
            False, f"the signature does not match manifest.json for key {fingerprint(key)}"
        )
    return SignatureCheck(
        True, f"manifest.json signed by key {fingerprint(key)} at {record.get('signed_at')}"
    )


@dataclass(frozen=True)
class Signoff:
    """One entry of ``signoffs.json``. ``raw`` is the entry exactly as the file holds
    it: its signature covers every field of it, so an edited entry (a field changed,
    one added) is read as it stands and fails its check, never dropped or tidied up."""

    raw: JsonObject

    def _text(self, name: str) -> str | None:
        value = self.raw.get(name)
        return None if value is None else str(value)

    @property
    def by(self) -> str | None:
        return self._text("by")

    @property
    def role(self) -> str | None:
        return self._text("role")

    @property
    def at(self) -> str | None:
        return self._text("at")

    @property
    def statement(self) -> str | None:
        return self._text("statement")

    @property
    def manifest_hash_signed_off(self) -> str | None:
        return self._text("manifest_hash_signed_off")

    @property
    def key_fingerprint(self) -> str | None:
        return self._text("key_fingerprint")

    @property
    def signature(self) -> str | None:
        return self._text("signature")

    @property
    def public_key(self) -> str | None:
        return self._text("public_key")

    def canonical(self) -> bytes:
        """The bytes its signature covers: every field but the signature's own."""
        return _canonical(self.raw)


def _canonical(record: JsonObject) -> bytes:
    signed = {k: v for k, v in record.items() if k not in ("signature", "public_key")}
    return json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()


def add_signoff(
    folder: Path, by: str, role: str, statement: str, private_path: Path | None = None
) -> Signoff:
    """Append a sign-off on the report as its manifest stands now. It names the
    manifest's hash and the evidence hash it accepts, and with a key it carries its own
    Ed25519 signature over those fields: a later sign-off is appended beside it and
    changes nothing it signed (``signoffs.json`` is outside the manifest)."""
    manifest_path = folder / "manifest.json"
    try:
        manifest = Manifest.read(manifest_path)  # a sign-off accepts only what fits its schema
    except FileNotFoundError:
        raise InputError("no manifest.json: not a report folder", file=manifest_path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable manifest: {exc}", file=manifest_path) from exc
    key = _load_private(private_path) if private_path is not None else None
    signoffs = read_signoffs(folder)
    record: JsonObject = {
        "by": by,
        "role": role,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "statement": statement,
        "evidence_hash": manifest.evidence_hash,
        "manifest_hash_signed_off": manifest.manifest_hash,
        "key_fingerprint": fingerprint(key.public_key()) if key is not None else None,
    }
    if key is not None:
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        record["public_key"] = base64.b64encode(raw).decode()
        record["signature"] = base64.b64encode(key.sign(_canonical(record))).decode()
    kept = [s.raw for s in signoffs] + [record]
    (folder / SIGNOFFS_FILE).write_text(json.dumps(kept, indent=2), encoding="utf-8")
    return Signoff(record)


def read_signoffs(folder: Path) -> list[Signoff]:
    try:
        records = json.loads((folder / SIGNOFFS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [Signoff(r) for r in records if isinstance(r, dict)] if isinstance(records, list) else []


@dataclass(frozen=True)
class SignoffCheck:
    record: Signoff
    ok: bool
    detail: str


def check_signoffs(folder: Path) -> list[SignoffCheck]:
    """Each sign-off, checked: a signed one against its own signature (by the key whose
    fingerprint it names), and every one against the manifest as it stands now."""
    try:
        current: str | None = Manifest.read(folder / "manifest.json").manifest_hash
    except (OSError, ValueError):
        current = None  # no manifest that fits its schema: no sign-off holds
    checks = []
    for record in read_signoffs(folder):
        who = f"{record.by} ({record.role}) at {record.at}"
        if current is None or record.manifest_hash_signed_off != current:
            checks.append(SignoffCheck(record, False, f"{who} signed off a different manifest"))
            continue
        if not record.signature:
            checks.append(SignoffCheck(record, True, f"{who}, unsigned (no key)"))
            continue
        checks.append(SignoffCheck(record, *_signed_ok(record, who)))
    return checks


def _signed_ok(record: Signoff, who: str) -> tuple[bool, str]:
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(record.public_key or ""))
        signature = base64.b64decode(record.signature or "")
    except (TypeError, ValueError) as exc:
        return False, f"{who}: unreadable signature ({exc})"
    if fingerprint(public) != record.key_fingerprint:
        return False, f"{who}: the key does not match the fingerprint it names"
    try:
        public.verify(signature, record.canonical())
    except InvalidSignature:
        return False, f"{who}: the signature does not match the sign-off (it was edited)"
    return True, f"{who}, signed by key {record.key_fingerprint}"


SIGNING_KEY_ENV = "AIDRILL_SIGNING_KEY"


def seal_run(run_dir: Path) -> Manifest:
    """A run directory's own manifest, written when the run ends: from then on any
    change to its evidence or result shows (``aidrill verify RUN_DIR``, and the report).
    Signed when ``AIDRILL_SIGNING_KEY`` names a private key."""
    manifest = write_manifest(run_dir)
    key = os.environ.get(SIGNING_KEY_ENV)
    if key:
        sign_manifest(run_dir, Path(key))
    return manifest
