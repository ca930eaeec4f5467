"""The aidrill Chaos Toolkit control.

Declared in an experiment as::

    controls:
      - name: aidrill
        provider: {type: python, module: aidrill.run.control}

it starts Locust before the first steady-state check, marks faults and rollbacks in
``events.jsonl`` as they happen, forces the rollback strategy ``always``, stops the
load at the end and writes ``result.json`` and ``report.html``. Chaos Toolkit calls
controls as module functions, so the one session of the current run is kept here
between ``configure_control`` and ``cleanup_control``; chaoslib runs one experiment
per process at a time.
"""

from __future__ import annotations

import logging
from typing import Any

from aidrill.run._session import DrillSession

logger = logging.getLogger(__name__)
_current: dict[str, DrillSession] = {}


def _session() -> DrillSession | None:
    return _current.get("session")


def configure_control(
    experiment: dict[str, Any],
    configuration: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    run_dir: str | None = None,
    plan: str | None = None,
    **_: Any,
) -> None:
    session = DrillSession(experiment, configuration, run_dir=run_dir, plan=plan)
    session.enforce_rollback_strategy(settings)
    _current["session"] = session
    logger.info("aidrill evidence goes to %s", session.run_dir)


def before_experiment_control(context: dict[str, Any], **_: Any) -> None:
    session = _session()
    if session is not None:
        session.start_load()


def before_hypothesis_control(context: dict[str, Any], **_: Any) -> None:
    session = _session()
    if session is not None:
        session.enter_hypothesis()


def before_method_control(context: dict[str, Any], **_: Any) -> None:
    session = _session()
    if session is not None:
        session.enter_phase("method")


def before_rollback_control(context: dict[str, Any], **_: Any) -> None:
    session = _session()
    if session is not None:
        session.enter_phase("rollbacks")


def before_activity_control(context: dict[str, Any], **_: Any) -> None:
    session = _session()
    if session is not None:
        session.activity_started(context)


def after_activity_control(context: dict[str, Any], state: Any = None, **_: Any) -> None:
    session = _session()
    if session is not None:
        session.activity_ended(context, state if isinstance(state, dict) else None)


def after_experiment_control(context: dict[str, Any], state: Any = None, **_: Any) -> None:
    session = _session()
    if session is not None:
        session.finish(state if isinstance(state, dict) else None)


def cleanup_control(**_: Any) -> None:
    session = _current.pop("session", None)
    if session is not None:
        session.abandon()
