"""A Chaos Toolkit action's keyword arguments as an experiment gives them.

An experiment is written by people: ``qty: "two"`` or ``instance_ids: "i-1"`` arrive
as they were typed. Each read here names the type it takes; a value of another type is
an :class:`~aidrill.errors.ExperimentError` naming the action and the argument, never a
``ValueError`` traceback from deep inside a resolver.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from aidrill._json import Json, JsonObject
from aidrill.errors import ExperimentError


class Arguments(Mapping[str, Json]):
    """The arguments of one action (``action`` names it in errors); read-only."""

    def __init__(self, given: Mapping[str, Json] | None = None, action: str = "an action"):
        self._given: dict[str, Json] = dict(given or {})
        self.action = action

    # -- Mapping ---------------------------------------------------------------------
    def __getitem__(self, name: str) -> Json:
        return self._given[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._given)

    def __len__(self) -> int:
        return len(self._given)

    def __repr__(self) -> str:
        return f"Arguments({self._given!r}, action={self.action!r})"

    def to_json(self) -> JsonObject:
        return dict(self._given)

    # -- typed reads -------------------------------------------------------------------
    def _wrong(self, name: str, wanted: str) -> ExperimentError:
        value = self._given.get(name)
        return ExperimentError(
            f"{self.action}: argument {name!r} must be {wanted}, not {value!r}",
            field=f"arguments.{name}",
        )

    def text(self, name: str, default: str | None = None) -> str | None:
        """A string (a number is taken as its digits: ``az: 1`` is ``"1"``)."""
        value = self._given.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self._wrong(name, "a string")
        return str(value)

    def whole(self, name: str, default: int | None = None) -> int | None:
        """A whole number (``"3"`` is 3)."""
        value = self._given.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise self._wrong(name, "a whole number")

    def number(self, name: str, default: float | None = None) -> float | None:
        """A number (``"12.5"`` is 12.5)."""
        value = self._given.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise self._wrong(name, "a number")

    def flag(self, name: str) -> bool:
        """True when given and not false (``"false"``, ``0`` and ``""`` are false)."""
        value = self._given.get(name)
        if isinstance(value, str):
            return value.strip().lower() not in ("", "0", "false", "no", "off")
        return bool(value)

    def texts(self, name: str) -> list[str]:
        """A list of strings; one string is a list of one."""
        value = self._given.get(name)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
            return [str(v) for v in value]
        raise self._wrong(name, "a list of strings")

    def objects(self, name: str) -> list[JsonObject]:
        """A list of objects (filters, tags)."""
        value = self._given.get(name)
        if value is None:
            return []
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return [v for v in value if isinstance(v, dict)]
        raise self._wrong(name, "a list of objects")
