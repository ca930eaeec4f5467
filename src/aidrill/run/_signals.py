"""Signals during a run: Ctrl-C and SIGTERM interrupt the run and rollbacks still run.

Chaos Toolkit turns SIGTERM into an exception that an action swallows as an ordinary
failure, and a second Ctrl-C during rollbacks abandons them. aidrill replaces both
handlers for the length of a run: the first SIGINT or SIGTERM (or a guardrail, through
the same path) raises KeyboardInterrupt wherever the run is — steady-state check,
action, pause, probe — and chaoslib then plays the rollbacks; any later signal is
answered with a message and otherwise ignored until the rollbacks are done.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

_HANDLED = (signal.SIGINT, signal.SIGTERM)


class InterruptGuard:
    """Installs the run's SIGINT/SIGTERM handlers and restores the previous ones."""

    def __init__(
        self, on_interrupt: Callable[[str, str | None], None], may_interrupt: Callable[[], bool]
    ) -> None:
        self._on_interrupt = on_interrupt
        self._may_interrupt = may_interrupt
        self._previous: dict[int, Any] = {}
        self.interrupted = False
        self.abort_reason: str | None = None
        self.abort_source = "guardrail"

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)

    @property
    def pending(self) -> str | None:
        """A signal the suite around this run received before the run's own handlers
        were in place: the run must not begin."""
        suite = _suite_of(self._previous.get(signal.SIGINT))
        return suite.signal if suite is not None else None

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def abort(self, reason: str, source: str = "guardrail") -> None:
        """Interrupt the run from another thread (a guardrail, the apparatus watch) as
        if by a signal."""
        if self.interrupted or self.abort_reason is not None:
            return
        self.abort_reason = reason
        self.abort_source = source
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        # chaoslib's runner puts its own SIGTERM handler between the suite's and ours;
        # SIGINT's previous handler is the suite's either way.
        suite = _suite_of(self._previous.get(signal.SIGINT))
        if suite is not None:
            suite.saw(name)  # the suite stops after this run, whatever the run does now
        if self.interrupted or not self._may_interrupt():
            sys.stderr.write(
                f"\naidrill: {name} received while rollbacks run; they will finish first "
                "so no fault is left behind.\n"
            )
            sys.stderr.flush()
            self._on_interrupt(f"{name} ignored", None)
            return
        self.interrupted = True
        reason = self.abort_reason
        self._on_interrupt(name if reason is None else self.abort_source, reason)
        sys.stderr.write(f"\naidrill: {reason or name}: interrupting the run; rolling back.\n")
        sys.stderr.flush()
        raise KeyboardInterrupt(reason or name)


class SuiteInterrupt:
    """SIGINT/SIGTERM for a suite of drills (``aidrill demo``, ``aidrill drill``).

    While a drill runs, its own :class:`InterruptGuard` answers the signal (rolls the
    drill back) and this handler is its "previous" one, restored after; the suite then
    sees the signal in the drill's evidence (:meth:`saw`). Between drills this handler
    answers: it remembers the signal and stops whatever the suite was doing (no drill
    is running, so there is nothing to roll back). A later signal while the suite winds
    down is answered with a message, not obeyed.
    """

    def __init__(self) -> None:
        self.signal: str | None = None
        self.drill_running = False  # between starting a drill and having its outcome
        self._previous: dict[int, Any] = {}

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process a signal ended."""
        number = signal.Signals[self.signal] if self.signal else signal.SIGINT
        return 128 + int(number)

    def __enter__(self) -> SuiteInterrupt:
        if threading.current_thread() is threading.main_thread():
            for signum in _HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def saw(self, name: str | None) -> None:
        """A drill's guard answered ``name`` (SIGINT/SIGTERM): the suite stops after it."""
        if name and self.signal is None:
            self.signal = name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signal is not None:
            sys.stderr.write(f"\naidrill: {name} received; the suite is already stopping.\n")
            sys.stderr.flush()
            return
        self.signal = name
        sys.stderr.write(f"\naidrill: {name}: stopping the suite; no further drill runs.\n")
        sys.stderr.flush()
        if not self.drill_running:
            raise KeyboardInterrupt(name)
        # A drill is starting or finishing outside its own handlers: it sees the signal
        # through ``pending`` (and does not begin) or has already rolled back.


def _suite_of(handler: Any) -> SuiteInterrupt | None:
    """The suite whose handler ``handler`` is, if it is one."""
    owner = getattr(handler, "__self__", None)
    return owner if isinstance(owner, SuiteInterrupt) else None
