"""One run as the aidrill control sees it: run directory, load, markers, safety, results."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from aidrill import _evidence as evidence
from aidrill._json import Configuration, Secrets
from aidrill._redact import collect_secret_values, redact, redact_text
from aidrill._run_result import recovered_so_far
from aidrill._scope import NOT_FAULTS
from aidrill._signing import seal_run
from aidrill.errors import RefusedError
from aidrill.experiment import (
    AidrillExtension,
    check_blast_radius,
    declared_scope,
    find_aidrill_extension,
)
from aidrill.plan import DEFAULT_PLAN_PATH, Plan, load_plan
from aidrill.probes import decisive_outcomes
from aidrill.run._guardrails import GuardrailWatcher
from aidrill.run._results import write_run_page, write_run_result
from aidrill.run._signals import InterruptGuard
from aidrill.run._target_side import TargetSide

if TYPE_CHECKING:
    from chaoslib.types import Activity, Experiment, Journal, Run, Settings


logger = logging.getLogger(__name__)
PLAIN_NOTE = "runs as a plain experiment; nothing is measured against the plan"


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage(), self.secrets)
        record.args = None
        return True


class DrillSession:
    """Everything aidrill adds around one chaoslib run."""

    def __init__(
        self,
        experiment: Experiment,
        configuration: Configuration | None,
        secrets: Secrets | None = None,
        run_dir: str | None = None,
        plan: str | None = None,
        heal: bool = False,
        participants: list[dict[str, str]] | None = None,
        load_workers: int | None = None,
    ) -> None:
        found = find_aidrill_extension(experiment)
        # Without aidrill settings an experiment runs plain: rollbacks always, redaction
        # and evidence, but no load, target checks or measurement against the plan.
        self.extension = AidrillExtension.model_validate(found[1]) if found else None
        self.plan_path = Path(plan or os.environ.get("AIDRILL_PLAN") or DEFAULT_PLAN_PATH)
        self.plan: Plan = load_plan(self.plan_path)
        if self.extension is not None:
            faults = check_blast_radius(experiment, self.plan, self.extension.full_outage)
            self.planned_faults = [fault.name for fault in faults]
        else:
            self.planned_faults = [
                str(a.get("name"))
                for a in experiment.get("method") or []
                if isinstance(a, dict) and a.get("type") == "action"
            ]
        self.heal = heal
        self._fault_started: dict[str, float] = {}
        self.failed_fault: str | None = None
        self._last_injected: str | None = None
        self.refused = False  # refused before the method (pre-flight, load): nothing injected
        self.phases: list[str] = []
        self.configuration = configuration if configuration is not None else {}
        self.secrets = self._secret_values(experiment, secrets)
        self.title = str(experiment.get("title", "experiment"))
        self.run_dir = (
            Path(run_dir)
            if run_dir
            else evidence.create_run_dir(evidence.DEFAULT_REPORTS_DIR, self.title)
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run_id = self.run_dir.name
        self.events = evidence.EventLog(self.run_dir / evidence.EVENTS_FILE)
        self.started = time.time()
        self.phase = "starting"
        self.hypothesis_runs = 0
        self.watcher: GuardrailWatcher | None = None
        self.finished = False
        self.guard = InterruptGuard(self._record_interrupt, self._may_interrupt)
        self._redacting = RedactingFilter(self.secrets)
        self.log_handler = self._attach_run_log()
        self._guarded_handlers = self._guard_other_logs()
        self.configuration.update(
            {
                "aidrill_run_id": self.run_id,
                "aidrill_run_dir": str(self.run_dir.resolve()),
                "aidrill_max_gpu_node_fraction": self.plan.blast_radius.max_gpu_node_fraction,
                "aidrill_plan": str(self.plan_path.resolve()),
                **({"aidrill_target": self.extension.target} if self.extension else {}),
            }
        )
        self.side = (
            TargetSide(
                self.extension,
                self.plan,
                self.run_dir,
                self.run_id,
                self.events,
                self._state_dir(),
                load_workers=load_workers,
            )
            if self.extension is not None
            else None
        )
        self._experiment = experiment
        self._write_snapshots(experiment)
        self.events.append(
            "run_started",
            run_id=self.run_id,
            experiment=self.title,
            plan=str(self.plan_path),
            pid=os.getpid(),
            planned_faults=self.planned_faults,
            participants=self._participants(participants),
        )
        self.guard.install()

    def _participants(self, given: list[dict[str, str]] | None) -> list[dict[str, str]]:
        """Who took part: named in the experiment, plus those named on the command line."""
        named = [p.model_dump() for p in self.extension.participants] if self.extension else []
        return named + [p for p in given or [] if p not in named]

    def _secret_values(self, experiment: Experiment, loaded: Secrets | None) -> set[str]:
        values = collect_secret_values(experiment)
        stack: list[Any] = [loaded or {}]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack.extend(node.values())
            elif isinstance(node, str) and len(node) >= 4:
                values.add(node)
        for key in self.extension.secret_configuration if self.extension else ():
            value = (self.configuration or {}).get(key)
            if value is not None and len(str(value)) >= 4:
                values.add(str(value))
        return values

    def _state_dir(self) -> Path | None:
        configured = self.configuration.get("aidrill_state_dir")
        return Path(configured) if isinstance(configured, str) and configured else None

    def _attach_run_log(self) -> logging.Handler:
        handler = logging.FileHandler(self.run_dir / evidence.RUN_LOG_FILE, encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.addFilter(self._redacting)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
        return handler

    def _guard_other_logs(self) -> list[logging.Handler]:
        """Redact what the run's other log handlers write too (``chaos run`` keeps
        chaostoolkit.log at DEBUG, where chaoslib logs every activity's output)."""
        handlers = {*logging.getLogger().handlers, *logging.getLogger("chaostoolkit").handlers}
        handlers.discard(self.log_handler)
        guarded = list(handlers)
        for handler in guarded:
            handler.addFilter(self._redacting)
        return guarded

    def _write_snapshots(self, experiment: Experiment) -> None:
        safe = redact(experiment, self.secrets)
        evidence.write_new_file(
            self.run_dir / evidence.EXPERIMENT_FILE, yaml.safe_dump(safe, sort_keys=False)
        )
        shutil.copyfile(self.plan_path, self.run_dir / evidence.PLAN_FILE)

    # -- interruption -------------------------------------------------------------------
    def _may_interrupt(self) -> bool:
        return self.phase not in ("rollbacks", "finishing") and not self.finished

    def _record_interrupt(self, what: str, reason: str | None) -> None:
        if what.endswith("ignored"):
            self.events.append("signal_ignored", signal=what.split()[0], phase=self.phase)
        elif what == "apparatus":
            self.events.append("apparatus_interrupt", reason=reason, phase=self.phase)
        elif reason is not None:
            self.events.append("guardrail_tripped", reason=reason, phase=self.phase)
        else:
            self.events.append("interrupted", signal=what, phase=self.phase)

    def _observing(self) -> bool:
        """The observation window is open: the verdicts still need the load's eyes."""
        return self.phase in _OBSERVING and not self.finished

    def _apparatus_failed(self, what: str) -> None:
        """The load stopped while the run was observing: stop injecting, roll back."""
        self.guard.abort(
            f"{what}: the run cannot see its users any more, rolling back", source="apparatus"
        )

    # -- phases --------------------------------------------------------------------------
    def enforce_rollback_strategy(self, settings: Settings | None) -> None:
        if settings is None:
            return
        rollbacks = settings.setdefault("runtime", {}).setdefault("rollbacks", {})
        if rollbacks.get("strategy") != "always":
            self.events.append(
                "rollback_strategy", strategy="always", was=rollbacks.get("strategy", "default")
            )
            rollbacks["strategy"] = "always"

    # -- before the steady state: pre-flight, then the load ------------------------------
    def begin(self) -> None:
        pending = self.guard.pending
        if pending is not None:
            self.events.append("interrupted", signal=pending, phase=self.phase)
            raise RefusedError(f"{pending} before the run began: nothing was injected")
        if self.side is None or self.extension is None:
            self.events.append("plain_run", note=PLAIN_NOTE)
            return
        self.side.preflight(self.heal, self._experiment)
        # The plan's header values (a token) are redacted wherever the run writes.
        self.secrets.update(self.side.connect().endpoints().http.secrets())
        load_starting = time.monotonic()
        self.side.start_load(self._apparatus_failed, self._observing)
        limits = self.extension.guardrails or self.plan.guardrails
        self.watcher = GuardrailWatcher(
            self.run_dir / evidence.TIMELINE_FILE,
            limits,
            self.extension.max_duration,
            self.guard.abort,
            started=load_starting,
        )
        self.watcher.start()
        self.side.observe_before()

    def enter_hypothesis(self) -> None:
        self.hypothesis_runs += 1
        name = "steady-state-before" if self.hypothesis_runs == 1 else "steady-state-after"
        self.enter_phase(name)

    def enter_phase(self, phase: str) -> None:
        self.phase = phase
        self.phases.append(phase)
        self.events.append("phase", phase=phase)
        if phase == "rollbacks":
            if self.watcher is not None:
                self.watcher.stop()
            self.events.append("rollbacks_started")
            if self.side is not None:
                self.side.audit()

    def activity_started(self, activity: Activity) -> None:
        if self.phase == "method" and activity.get("type") == "action":
            step = _not_a_fault(activity)
            if step is not None:
                self.events.append(f"{step}_started", activity=activity.get("name"))
                return
            if self.side is not None:
                self.side.check_injection(activity, self.configuration)
            started = self.events.append("fault_started", activity=activity.get("name"))
            self._fault_started[str(activity.get("name"))] = started.time

    def activity_ended(self, activity: Activity, run: Run | None) -> None:
        status = (run or {}).get("status")
        name = activity.get("name")
        if self.phase == "rollbacks":
            kind = "rollback_ran"
        elif self.phase == "method" and activity.get("type") == "action":
            step = _not_a_fault(activity)
            kind = "fault_action_ended" if step is None else f"{step}_ended"
        else:
            kind = "probe_ended" if activity.get("type") == "probe" else "action_ended"
        error: str | None = None
        never_came_back = _wait_that_timed_out(activity, run) if kind == "rollback_ran" else None
        if never_came_back is not None:
            status, error = "failed", never_came_back
            logger.error("rollback %s: %s", name, never_came_back)
        elif run and run.get("exception"):
            error = redact_text(_error_of(run["exception"]), self.secrets)
            logger.error("activity %s failed in %s: %s", name, self.phase, error)
        elif status != "succeeded" and self.guard.interrupted:
            error = "interrupted before it completed"
        fields = {"activity": name, "status": status, "phase": self.phase}
        self.events.append_fields(kind, fields if error is None else {**fields, "error": error})
        if kind == "fault_action_ended":
            self._fault_ended(str(name), status, error)

    def _fault_ended(self, name: str, status: Any, error: str | None) -> None:
        """A fault counts as injected only once its action succeeded; its time is still
        the start of the action (the moment of injection, not of detection)."""
        started = self._fault_started.pop(name, None)
        if status == "succeeded":
            self.events.append("fault_injected", when=started, activity=name)
            self._last_injected = name
            return
        self.failed_fault = name
        self.events.append(
            "fault_failed", activity=name, error=error or "the action did not complete"
        )

    def hold_check(self, activity: Activity) -> Callable[[], bool] | None:
        """With ``hold-until-recovered``, what ends a pause in the method once a fault was
        injected (the pause after the fault, or after a step that restores what it took,
        such as a snapshot restore): every measured component recovered from the latest
        fault and held for the sustain. A pause before any fault is slept as written."""
        extension = self.extension
        if (
            extension is None
            or not extension.hold_until_recovered
            or self.phase != "method"
            or self._last_injected is None
        ):
            return None
        return lambda: recovered_so_far(self.run_dir, self.plan, extension)

    def hold_ended(self, activity: Activity, held: float) -> None:
        logger.info(
            "every measured component recovered and held for its sustain: the pause after"
            " %s ends after %.1fs",
            activity.get("name"),
            held,
        )
        self.events.append("hold_ended", activity=activity.get("name"), seconds=round(held, 3))

    # -- the end -------------------------------------------------------------------------
    def finish(self, journal: Journal | None) -> None:
        """Stop the load, gather evidence and write result.json and report.html."""
        if self.finished:
            return
        self.phase = "finishing"
        self.finished = True
        if self.watcher is not None:
            self.watcher.stop()
        status = (journal or {}).get("status", "unknown")
        deviated = bool((journal or {}).get("deviated"))
        reason = self.guard.abort_reason
        if reason is not None:
            status = "aborted"
        self.events.append(
            "experiment_ended", status=status, deviated=deviated, abort_reason=reason
        )
        self._note_a_method_that_never_ran()
        if self.side is not None:
            self.side.stop_load()
            if not self.refused:  # a refused run injected nothing: it leaves the target be
                self.side.check_after(self._a_rollback_failed())
            self.side.collect_activities(self.started)
            self.side.collect_ground_truth(self.started)
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("journal", lambda: self._write_journal(journal)),
            ("result", lambda: write_run_result(self.run_dir, status, deviated, reason)),
            ("report", lambda: write_run_page(self.run_dir)),
        ]
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # one failing step must not lose the others
                logger.error("could not write the run's %s: %s", name, exc)
                self.events.append("evidence_error", step=name, error=str(exc))
        if journal is not None:
            # chaoslib hands this same journal back to its caller; `chaos run` writes it.
            safe = redact(journal, self.secrets)
            journal.clear()
            journal.update(safe)
        self.close()
        try:
            seal_run(self.run_dir)  # last: nothing of the run is written after it
        except Exception as exc:  # an unsealed run is still a run; the report says so
            logger.error("could not seal the run's evidence: %s", exc)

    def _note_a_method_that_never_ran(self) -> None:
        """A steady state that did not hold before the method means no fault ran: say
        which check failed and by how much."""
        if self.refused or "method" in self.phases or not self.planned_faults:
            return
        failing = []
        records, _ = evidence.read_jsonl(self.run_dir / evidence.PROBES_FILE)
        for record in records[-1:]:
            for check in decisive_outcomes(record.get("checks") or []):
                if not check.holds:
                    failing.append(f"{check.check} {dict(check.figures)}")
        if "steady-state-before" in self.phases:
            why = "the steady state did not hold before it"
        else:
            why = "the run ended before it"
        self.events.append("method_not_run", reason=why, failing_checks=failing)

    def _a_rollback_failed(self) -> bool:
        return any(
            e.kind == "rollback_ran" and e.data.get("status") != "succeeded"
            for e in evidence.read_events(self.run_dir)
        )

    def close(self) -> None:
        self.guard.restore()
        self.events.close()
        for handler in self._guarded_handlers:
            handler.removeFilter(self._redacting)
        logging.getLogger().removeHandler(self.log_handler)
        self.log_handler.close()

    def abandon(self) -> None:
        """chaoslib ended without an experiment-after hook: never leave load running."""
        if not self.finished:
            self.finish({"status": "failed", "deviated": False})

    def _write_journal(self, journal: Journal | None) -> None:
        import json

        safe = redact(journal or {}, self.secrets)
        evidence.write_new_file(
            self.run_dir / evidence.JOURNAL_FILE, json.dumps(safe, indent=2, default=str)
        )


_OBSERVING = ("starting", "steady-state-before", "method", "steady-state-after")


def _wait_that_timed_out(activity: Activity, run: Run | None) -> str | None:
    """A rollback that only waits (a probe) and whose wait gave up has not brought the
    target back, whatever chaoslib calls its status: name what never came back. The
    drivers' waits say they gave up by their answer: chaostoolkit-aws's ``wait_*``
    probes return sys.maxsize, chaostoolkit-kubernetes's return False."""
    if not run or run.get("status") != "succeeded" or activity.get("type") != "probe":
        return None
    output = run.get("output")
    gave_up = output is False or (
        isinstance(output, int) and not isinstance(output, bool) and output == sys.maxsize
    )
    if not gave_up:
        return None
    provider = activity.get("provider") or {}
    arguments = provider.get("arguments")
    arguments = arguments if isinstance(arguments, dict) else {}
    what = (
        ", ".join(str(n) for n in arguments.get("asg_names") or [])
        or arguments.get("name")
        or arguments.get("label_selector")
        or "the resource it waited for"
    )
    limit = arguments.get("timeout")
    within = f" within its {limit} s timeout" if limit is not None else ""
    return f"{provider.get('func', 'the wait')} gave up: {what} never came back{within}"


_EXCEPTION_NAME = re.compile(r"^(?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*: ")


def _error_of(exception: list[str]) -> str:
    """The last line of chaoslib's formatted exception, without the dotted names of the
    exceptions that wrap the message (``chaoslib.exceptions.ActivityFailed: ...``)."""
    lines = [line.strip() for line in "".join(exception).splitlines() if line.strip()]
    message = lines[-1] if lines else "unknown error"
    while _EXCEPTION_NAME.match(message):
        message = _EXCEPTION_NAME.sub("", message, count=1)
    return message[-500:]


def _not_a_fault(activity: Activity) -> str | None:
    """``recovery`` or ``setup`` for a method action that takes nothing away."""
    scope = declared_scope(activity.get("provider") or {})
    return scope.kind if scope is not None and scope.kind in NOT_FAULTS else None
