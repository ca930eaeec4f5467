"""``manifest.json`` as a typed record (a report folder's and a run directory's alike):
written from it, read back through it, and its JSON Schema generated from it for
auditors' tools (``aidrill/schemas/manifest.schema.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aidrill._json import JsonOut
from aidrill._typed_files import misfit, shipped_schema

MANIFEST_SCHEMA: Literal["aidrill.manifest/1"] = "aidrill.manifest/1"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ManifestFile(_Closed):
    """One file, in chain order: evidence first, then the report's own files."""

    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    chain: str = Field(pattern="^[0-9a-f]{64}$")
    # A copy with secrets redacted: its hash is the copy's, the original's kept beside.
    redacted: bool | None = None
    original_sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")


class LinkNotCopied(_Closed):
    """A symbolic link found in a run: named, never followed or copied."""

    path: str
    link: str
    copied: Literal[False] = False


class Generator(_Closed):
    tool: str
    version: str
    operator: str
    host: str
    command: str
    generated_at: str


class RunSeal(_Closed):
    """A run's own manifest head as the run sealed it (a quarterly manifest's chain)."""

    run: str
    manifest_hash: str | None
    signed_by: str | None = None


class Manifest(_Closed):
    schema_: Literal["aidrill.manifest/1"] = Field(alias="schema")
    algorithm: Literal["sha256"]
    generated_at: str
    chain: str
    evidence_hash: str
    manifest_hash: str
    generator: Generator
    files: list[ManifestFile]
    links_not_copied: list[LinkNotCopied]
    runs: list[RunSeal] | None = None

    def to_json(self) -> dict[str, JsonOut]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """The manifest at ``path``; ``OSError`` when it cannot be read, ``ValueError``
        naming what does not fit its schema."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise misfit(exc, "the manifest") from None


def schema() -> dict[str, JsonOut]:
    """The JSON Schema of manifest.json, as shipped in ``aidrill/schemas/``."""
    return shipped_schema(
        Manifest, "manifest.schema.json", "aidrill evidence manifest (manifest.json)"
    )
