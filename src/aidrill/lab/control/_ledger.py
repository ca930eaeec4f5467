"""The persisted fault ledger and the ground-truth log of the lab."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, cast

from aidrill._json import Json
from aidrill.lab._records import Event, FaultEntry, FaultOwner


def read_entries(path: Path) -> list[FaultEntry]:
    """A ledger file's entries, whether or not its lab runs. An entry edited out of
    shape is kept, its missing keys named "unknown": a fault nobody can trace is still
    a fault left behind."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    if not isinstance(entries, list):
        return []
    return [_entry(e) for e in entries if isinstance(e, dict)]


def _entry(raw: dict[str, Json]) -> FaultEntry:
    owner = raw.get("owner")
    injected = raw.get("injected_at")
    fitted = {
        **raw,
        "id": str(raw.get("id") or "unknown"),
        "kind": str(raw.get("kind") or "unknown"),
        "region": str(raw.get("region") or "unknown"),
        "injected_at": float(injected) if isinstance(injected, (int, float)) else None,
        "owner": owner if isinstance(owner, dict) else {},
    }
    return cast(FaultEntry, fitted)


class FaultLedger:
    """Every active fault, persisted at each change so a killed run's faults are found."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: list[FaultEntry] = self._read()

    def _read(self) -> list[FaultEntry]:
        return read_entries(self.path)

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._entries, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)

    def add(self, kind: str, region: str, owner: FaultOwner, **details: Json) -> FaultEntry:
        entry: FaultEntry = {
            "id": uuid.uuid4().hex[:12],
            "kind": kind,
            "region": region,
            "injected_at": time.time(),
            "owner": owner,
        }
        # The fault's own settings ride beside the entry's keys (FaultEntry's contract).
        entry.update(cast(FaultEntry, details))
        with self._lock:
            self._entries.append(entry)
            self._write()
        return entry

    def remove(self, kind: str, region: str | None) -> list[FaultEntry]:
        """Remove the faults of ``kind`` in ``region`` (any region when None)."""
        with self._lock:
            gone = [
                e
                for e in self._entries
                if e["kind"] == kind and (region is None or e["region"] == region)
            ]
            self._entries = [e for e in self._entries if e not in gone]
            self._write()
        return gone

    def take_all(self) -> list[FaultEntry]:
        with self._lock:
            gone, self._entries = self._entries, []
            self._write()
        return gone

    def entries(self) -> list[FaultEntry]:
        with self._lock:
            return list(self._entries)


# Records that arrive all the time whatever happens; they do not show a repair moving on.
_ROUTINE = frozenset({"object_replicated", "model_registry_replicated"})


class GroundTruthLog:
    """Append-only JSON lines of what really happened in the lab, flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle = path.open("a", encoding="utf-8")
        self.changes = 0  # records that are not routine: something in the lab moved

    def record(self, kind: str, **data: Any) -> None:
        line = json.dumps({"time": time.time(), "kind": kind, **data})
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()
            if kind not in _ROUTINE:
                self.changes += 1

    def since(self, start: float) -> list[Event]:
        with self._lock:
            self._handle.flush()
        records: list[Event] = []
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if record["time"] >= start:
                    records.append(record)
        return records

    def close(self) -> None:
        with self._lock:
            self._handle.close()
