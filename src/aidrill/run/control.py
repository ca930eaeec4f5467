"""The aidrill Chaos Toolkit control.

Declared in an experiment as::

    controls:
      - name: aidrill
        provider: {type: python, module: aidrill.run.control}

it checks the blast radius and that the target is nominal (pre-flight; with
``heal: true`` among its arguments it resets a target that is not), starts Locust
before the first steady-state check, marks faults and rollbacks in ``events.jsonl`` as
they happen, forces the rollback strategy ``always``, turns SIGINT/SIGTERM, guardrail
breaches and a fault that failed into an interruption that rolls back, stops the load
at the end, checks the target is nominal again (resetting it when it is not) and
writes ``result.json`` and ``report.html``.

Chaos Toolkit calls controls as module functions, so the one session of the current
run is kept here between ``configure_control`` and ``cleanup_control``; chaoslib runs
one experiment per process at a time. chaoslib logs a failing control at DEBUG and
carries on; aidrill logs at ERROR and interrupts the run instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chaoslib.exceptions import InterruptExecution
from chaoslib.run import RunEventHandler

from aidrill._json import Configuration, Secrets
from aidrill.errors import DrillError, TargetNotNominalError
from aidrill.run._pauses import HeldPauses
from aidrill.run._session import DrillSession

if TYPE_CHECKING:
    from chaoslib.types import Activity, Experiment, Hypothesis, Journal, Run, Settings


logger = logging.getLogger(__name__)


@dataclass
class _Current:
    """This process's drill: its session, or why aidrill refused it."""

    session: DrillSession | None = None
    refusal: str | None = None


_current = _Current()
_pauses = HeldPauses()


def _session() -> DrillSession | None:
    return _current.session


def configure_control(
    experiment: Experiment,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    settings: Settings | None = None,
    run_dir: str | None = None,
    plan: str | None = None,
    heal: bool = False,
    participants: list[dict[str, str]] | None = None,
    load_workers: int | None = None,
    event_registry: Any = None,
    **_: Any,
) -> None:
    try:
        session = DrillSession(
            experiment,
            configuration,
            secrets,
            run_dir=run_dir,
            plan=plan,
            heal=bool(heal),
            participants=participants,
            load_workers=load_workers,
        )
    except DrillError as exc:
        logger.error("aidrill refuses this run: %s", exc)
        _current.refusal = str(exc)
        return
    session.enforce_rollback_strategy(settings)
    if event_registry is not None:
        event_registry.register(_ActivityEvents(session))
    _current.session = session
    logger.info("aidrill evidence goes to %s", session.run_dir)


def before_experiment_control(context: Experiment, **_: Any) -> None:
    refusal = _current.refusal
    if refusal:
        raise InterruptExecution(f"aidrill refuses this run: {refusal}")
    session = _session()
    if session is not None:
        _interrupt_on_error(session.begin)


def before_hypothesis_control(context: Hypothesis, **_: Any) -> None:
    session = _session()
    if session is not None:
        session.enter_hypothesis()


def before_method_control(context: Experiment, **_: Any) -> None:
    session = _session()
    if session is not None:
        session.enter_phase("method")


def before_rollback_control(context: Experiment, **_: Any) -> None:
    session = _session()
    if session is not None:
        session.enter_phase("rollbacks")
        if session.refused:
            # Refused before the method: this run injected nothing, so it must not
            # "repair" a target it found broken; that is what --heal is for.
            reason = "the run was refused before its method: nothing to roll back"
            session.events.append("rollbacks_skipped", reason=reason)
            raise InterruptExecution(f"aidrill: {reason}")


def before_activity_control(context: Activity, **_: Any) -> None:
    session = _session()
    if session is not None:
        _interrupt_on_error(lambda: session.activity_started(context))
        if session.phase != "rollbacks":  # a rollback's pause is waited out, as chaoslib does
            _pauses.take(context)


def after_activity_control(
    context: Activity,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **_: Any,
) -> None:
    session = _session()
    failed = session.failed_fault if session is not None else None
    held = _pauses.sleep_after(
        context,
        configuration,
        secrets,
        interrupted=lambda: (
            failed is not None or (session is not None and session.guard.interrupted)
        ),
        log=logger.info,
        done=session.hold_check(context) if session is not None else None,
    )
    if held is not None and session is not None:
        session.hold_ended(context, held)
    if session is not None and failed is not None and not session.guard.interrupted:
        # Watching a fault that never landed proves nothing: roll back now.
        session.failed_fault = None
        message = f"the fault {failed} was not injected; the run is invalid, rolling back"
        logger.error("aidrill interrupts the run: %s", message)
        raise InterruptExecution(message)


def after_experiment_control(context: Experiment, state: Journal | None = None, **_: Any) -> None:
    session = _session()
    if session is not None:
        session.finish(state if isinstance(state, dict) else None)


def cleanup_control(**_: Any) -> None:
    session, _current.session, _current.refusal = _current.session, None, None
    if session is not None:
        session.abandon()


class _ActivityEvents(RunEventHandler):  # type: ignore[misc]
    """chaoslib reports an activity complete before its pause; the after-activity control
    fires only after the pause, so completion is taken from here."""

    def __init__(self, session: DrillSession) -> None:
        self.session = session

    def activity_completed(self, activity: Activity, run: Run) -> None:
        self.session.activity_ended(activity, run if isinstance(run, dict) else None)


def _interrupt_on_error(step: Any) -> None:
    try:
        step()
    except DrillError as exc:
        logger.error("aidrill interrupts the run: %s", exc)
        session = _session()
        if session is not None:
            session.refused = session.refused or session.phase == "starting"
            if not isinstance(exc, TargetNotNominalError):  # recorded as preflight_failed
                session.events.append("refused", reason=str(exc), phase=session.phase)
        raise InterruptExecution(str(exc)) from exc
