"""The balancer's optional outlier ejection on answer quality and latency.

A plain health check asks a node whether it is up; this one asks it a question. Each
health round the balancer sends the same canary inference to every node that passes
its health check and compares the answers: a node that errs, answers slower than
``LATENCY``, or disagrees with the majority of its peers fails the round. Failing two of
its last three rounds ejects it from rotation (a GPU that loses a share of its answers
is caught as surely as one that loses them all); two passes in a row readmit it. It is what a team
mirrors in production with a synthetic known-answer probe or an outlier detector
(Envoy's outlier detection, a canary scorer beside the load balancer), and it is off
unless switched on (``aidrill.lab.actions.enable_outlier_ejection``).
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from aidrill.lab._http import post_json
from aidrill.lab.serving._model import REQUEST_FEATURES

LATENCY = 1.0  # seconds: a canary answer slower than this fails the round
_TIMEOUT = 2.0
EJECT_AFTER = 2  # failed rounds ...
_OF_LAST = 3  # ... of the last few
READMIT_AFTER = 2
_CANARIES: list[dict[str, object]] = [
    {"entity": f"quality-canary-{i}", "features": [round(float(x), 4) for x in row]}
    for i, row in enumerate(np.random.default_rng(7).normal(0.0, 2.0, (5, REQUEST_FEATURES)))
]


class Answer(NamedTuple):
    label: int | None
    seconds: float
    error: str | None


def ask(port: int, canary: Mapping[str, object]) -> Answer:
    started = time.perf_counter()
    try:
        status, body = post_json("127.0.0.1", port, "/predict", canary, timeout=_TIMEOUT)
    except (OSError, ValueError) as exc:
        return Answer(None, time.perf_counter() - started, f"no answer ({type(exc).__name__})")
    seconds = time.perf_counter() - started
    if status != 200 or not isinstance(body, dict) or "label" not in body:
        return Answer(None, seconds, f"answered {status}: {json.dumps(body)[:80]}")
    return Answer(int(body["label"]), seconds, None)


def judge(answers: dict[str, Answer]) -> dict[str, str | None]:
    """Each node's failure this round (None: it passed). A node is wrong only against a
    strict majority of at least two agreeing peers; without one, only errors and
    latency count."""
    labels = collections.Counter(a.label for a in answers.values() if a.label is not None)
    top = labels.most_common(1)
    majority = top[0][0] if top and top[0][1] >= 2 and top[0][1] * 2 > len(answers) else None
    verdicts: dict[str, str | None] = {}
    for name, answer in answers.items():
        if answer.error is not None:
            verdicts[name] = answer.error
        elif answer.seconds > LATENCY:
            verdicts[name] = f"answered in {answer.seconds:.2f} s (limit {LATENCY:g} s)"
        elif majority is not None and answer.label != majority:
            verdicts[name] = f"answered {answer.label} where its peers answered {majority}"
        else:
            verdicts[name] = None
    return verdicts


class OutlierEjection:
    """Per region: the canary rounds, each node's streak, and who is ejected and why."""

    def __init__(self) -> None:
        self._round = 0
        self._rounds: dict[str, collections.deque[bool]] = {}  # node -> last rounds failed
        self._passes: dict[str, int] = {}
        self.ejected: dict[str, tuple[str, float]] = {}  # node -> (why, since monotonic)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="outlier")

    def check(self, nodes: dict[str, int]) -> None:
        """One round over ``nodes`` (name -> port, those that pass their health check)."""
        canary = _CANARIES[self._round % len(_CANARIES)]
        self._round += 1
        futures = {name: self._pool.submit(ask, port, canary) for name, port in nodes.items()}
        verdicts = judge({name: future.result() for name, future in futures.items()})
        for name, failure in verdicts.items():
            last = self._rounds.setdefault(name, collections.deque(maxlen=_OF_LAST))
            last.append(failure is not None)
            if failure is None:
                self._passes[name] = self._passes.get(name, 0) + 1
                if name in self.ejected and self._passes[name] >= READMIT_AFTER:
                    del self.ejected[name]
                    last.clear()
                continue
            self._passes[name] = 0
            if name not in self.ejected and sum(last) >= EJECT_AFTER:
                self.ejected[name] = (failure, time.monotonic())
        for name in [n for n in self.ejected if n not in nodes]:
            del self.ejected[name]  # gone, or failing its plain health check anyway

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
