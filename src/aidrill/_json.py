"""JSON that crosses a wire aidrill does not type further: a reply passed through to
Chaos Toolkit's journal as the activity's output, a cloud API's document read for a
few fields. Stricter than ``Any``: a reader narrows what it takes out."""

from __future__ import annotations

from typing import TypeAlias

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"
JsonObject: TypeAlias = "dict[str, Json]"
# Chaos Toolkit's configuration and secrets once chaoslib has loaded them: JSON values
# by name (secrets by scope, then name). A reader narrows what it takes out.
Configuration: TypeAlias = "dict[str, Json]"
Secrets: TypeAlias = "dict[str, dict[str, Json]]"
# A Chaos Toolkit activity's provider as the experiment gives it (``type``, ``module``,
# ``func``, ``arguments``...): JSON an author wrote, read field by field.
Provider: TypeAlias = "dict[str, Json]"
