"""Fields of one evidence line (a JSON object as ``json.loads`` gave it), read with the
type a record needs. A field that is missing raises ``KeyError``, one of another type
``TypeError`` or ``ValueError``: what ``parse_records`` takes for "not such a record",
so a line a person edited into another shape is left out, never half-read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

Line: TypeAlias = Mapping[str, object]


# A report reads millions of these fields: the types JSON gives are tried first, by
# identity (the same answers as the isinstance checks after them, in a third the time).


def number(value: object) -> float:
    """A number (a JSON number, or its digits as a string)."""
    if type(value) is float:
        return value
    if isinstance(value, float | int | str) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, not {type(value).__name__}")


def maybe_number(value: object) -> float | None:
    return None if value is None else number(value)


def whole(value: object) -> int:
    if type(value) is int:
        return value
    if isinstance(value, int | str) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"expected a whole number, not {type(value).__name__}")


def counts(value: object) -> dict[str, int]:
    """``{name: count}`` (absent or null: none)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object of counts, not {type(value).__name__}")
    return {str(k): whole(v) for k, v in value.items()}


def text(value: object) -> str | None:
    return None if value is None else str(value)


def texts(value: object) -> list[str]:
    """A list's items as strings (absent, null or not a list: none)."""
    return [str(v) for v in value] if isinstance(value, list | tuple) else []
