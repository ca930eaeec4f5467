"""Keeping secrets out of every copy of an experiment, journal, log and report."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaoslib.types import Experiment


REDACTED = "***redacted***"
# A key naming a secret; "token" but not the measured rates of generated tokens
# (``min_tokens_per_second``, ``token_seconds``) nor the length of an answer a protocol
# asks for (``max-tokens``, ``max_tokens``): figures, not credentials.
_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|(?<!max[_-])token(?!s?_per_second|_seconds)|api[_-]?key|credential"
    r"|private[_-]?key)",
    re.IGNORECASE,
)


def collect_secret_values(experiment: Experiment) -> set[str]:
    """Literal secret values declared in the experiment (``secrets`` and secret-like keys)."""
    values: set[str] = set()

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, dict):
            if secret and node.get("type") == "env":
                return
            for key, value in node.items():
                walk(value, secret or bool(_SECRET_KEY.search(str(key))))
        elif isinstance(node, list):
            for item in node:
                walk(item, secret)
        elif secret and isinstance(node, str | int | float) and not isinstance(node, bool):
            text = str(node)
            if len(text) >= 4:
                values.add(text)

    walk(experiment.get("secrets") or {}, True)
    walk(experiment.get("configuration") or {}, False)
    return values


def redact(node: Any, secrets: set[str]) -> Any:
    """A deep copy of ``node`` with every secret value (and secret-like key) masked."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "secrets" or _SECRET_KEY.search(str(key)):
                out[key] = _mask_tree(value)
            else:
                out[key] = redact(value, secrets)
        return out
    if isinstance(node, list):
        return [redact(item, secrets) for item in node]
    if isinstance(node, str):
        return redact_text(node, secrets)
    return node


def redact_text(text: str, secrets: set[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def _mask_tree(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "env":
            return dict(node)
        return {key: _mask_tree(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_mask_tree(item) for item in node]
    return REDACTED
