"""JSON that crosses a wire aidrill does not type further: a reply passed through to
Chaos Toolkit's journal as the activity's output, a cloud API's document read for a
few fields. Stricter than ``Any``: a reader narrows what it takes out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"
JsonObject: TypeAlias = "dict[str, Json]"
# JSON a writer hands out (a record's ``to_json()``): read-only views, so typed values
# fit as they are (a ``list[str]`` is a ``Sequence[JsonOut]``; a ``list[str]`` is not a
# ``list[Json]``, lists being mutable).
JsonOut: TypeAlias = "bool | int | float | str | Sequence[JsonOut] | Mapping[str, JsonOut] | None"
JsonDocument: TypeAlias = "Mapping[str, JsonOut]"
# Chaos Toolkit's configuration and secrets once chaoslib has loaded them: JSON values
# by name (secrets by scope, then name). A reader narrows what it takes out.
Configuration: TypeAlias = "dict[str, Json]"
Secrets: TypeAlias = "dict[str, dict[str, Json]]"
# A Chaos Toolkit activity's provider as the experiment gives it (``type``, ``module``,
# ``func``, ``arguments``...): JSON an author wrote, read field by field.
Provider: TypeAlias = "dict[str, Json]"
