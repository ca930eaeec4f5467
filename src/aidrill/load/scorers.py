"""Scoring one answer against its golden sample: 1.0 when it is right, 0.0 when not.

A golden sample says how it is scored in ``expect`` (``{"scorer": "contains", "value":
"Paris"}``); a sample of the lab's own protocol with only a ``label`` is scored by
``label``. Every scorer takes the answer the protocol read from the response (a label,
a text, a JSON value, a vector) and never raises: an answer it cannot read scores 0.

Runs once per answer inside the load's process: plain operations, compiled patterns
cached.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jmespath

Scorer = Callable[[Mapping[str, Any], Any], float]

_WORD = re.compile(r"[A-Za-z0-9]+")


def expectation(sample: Mapping[str, Any]) -> Mapping[str, Any]:
    """The sample's scoring rule: its ``expect``, else equality with its ``label``."""
    expect = sample.get("expect")
    if isinstance(expect, Mapping):
        return expect
    return {"scorer": "label", "value": sample.get("label")}


def score(expect: Mapping[str, Any], answer: Any) -> float:
    """1.0 or 0.0 (recall for ``recall``): the answer judged by ``expect``'s scorer."""
    scorer = SCORERS.get(str(expect.get("scorer", "label")))
    if scorer is None or answer is None:
        return 0.0
    try:
        return scorer(expect, answer)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, re.error):
        return 0.0


def _text(answer: Any) -> str:
    return answer if isinstance(answer, str) else json.dumps(answer)


def _fold(text: str, expect: Mapping[str, Any]) -> str:
    text = text.strip()
    return text if expect.get("case-sensitive") else text.casefold()


def _label(expect: Mapping[str, Any], answer: Any) -> float:
    if isinstance(answer, list) and len(answer) == 1:  # a one-element tensor
        answer = answer[0]
    return float(answer == expect.get("value"))


def _exact(expect: Mapping[str, Any], answer: Any) -> float:
    return float(_fold(_text(answer), expect) == _fold(str(expect["value"]), expect))


def _contains(expect: Mapping[str, Any], answer: Any) -> float:
    wanted = expect["value"]
    options = wanted if isinstance(wanted, list) else [wanted]
    text = _fold(_text(answer), expect)
    return float(any(_fold(str(option), expect) in text for option in options))


@lru_cache(maxsize=256)
def compiled_pattern(pattern: str, flags: int) -> re.Pattern[str]:
    with warnings.catch_warnings():  # a golden set's odd pattern ("[[a]") is its own affair
        warnings.simplefilter("ignore")
        return re.compile(pattern, flags)


def _regex(expect: Mapping[str, Any], answer: Any) -> float:
    flags = 0 if expect.get("case-sensitive", True) else re.IGNORECASE
    return float(compiled_pattern(str(expect["value"]), flags).search(_text(answer)) is not None)


def _json_field(expect: Mapping[str, Any], answer: Any) -> float:
    document = json.loads(answer) if isinstance(answer, str) else answer
    found = jmespath.search(str(expect["field"]), document)
    if "value" not in expect:
        return float(found is not None)
    return float(found == expect["value"])


def _number(answer: Any) -> float:
    while isinstance(answer, list) and answer:
        answer = answer[0]
    if isinstance(answer, str):
        match = re.search(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", answer)
        if match is None:
            raise ValueError("no number in the answer")
        return float(match.group())
    if isinstance(answer, bool):
        raise TypeError("a truth value is not a number")
    return float(answer)


def _numeric(expect: Mapping[str, Any], answer: Any) -> float:
    tolerance = float(expect.get("tolerance", 0.0))
    return float(abs(_number(answer) - float(expect["value"])) <= tolerance)


def _choice(expect: Mapping[str, Any], answer: Any) -> float:
    """The first of the options the answer names, as a word of its own ("B", "(B)",
    "The answer is B."), against the expected option."""
    options = {str(o).casefold(): str(o) for o in expect.get("options") or ["A", "B", "C", "D"]}
    for word in _WORD.findall(_text(answer)):
        chosen = options.get(word.casefold())
        if chosen is not None:
            return float(chosen.casefold() == str(expect["value"]).casefold())
    return 0.0


def _embedding_cosine(expect: Mapping[str, Any], answer: Any) -> float:
    wanted = [float(x) for x in expect["value"]]
    got = [float(x) for x in answer]
    if len(got) != len(wanted):
        return 0.0
    dot = sum(a * b for a, b in zip(wanted, got, strict=True))
    norm = math.sqrt(sum(a * a for a in wanted)) * math.sqrt(sum(b * b for b in got))
    return float(norm > 0 and dot / norm >= float(expect.get("floor", 0.95)))


def _recall(expect: Mapping[str, Any], answer: Any) -> float:
    exact = set(expect["value"])
    return len(exact.intersection(answer)) / len(exact) if exact else 0.0


SCORERS: dict[str, Scorer] = {
    "label": _label,
    "exact": _exact,
    "contains": _contains,
    "regex": _regex,
    "json-field": _json_field,
    "numeric": _numeric,
    "choice": _choice,
    "embedding-cosine": _embedding_cosine,
    "recall": _recall,
}
