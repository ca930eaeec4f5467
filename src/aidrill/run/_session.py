"""One run as the aidrill control sees it: run directory, load, markers, results."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from aidrill import _evidence as evidence
from aidrill._redact import collect_secret_values, redact
from aidrill.errors import DrillError, ExperimentError
from aidrill.experiment import AidrillExtension, find_aidrill_extension
from aidrill.lab import LabClient, default_state_dir
from aidrill.load import LoadGenerator, LoadProfile
from aidrill.measure import GROUND_TRUTH_PREFIX, evaluate_run, iso
from aidrill.plan import DEFAULT_PLAN_PATH, Plan, load_plan

logger = logging.getLogger(__name__)


class DrillSession:
    """Everything aidrill adds around one chaoslib run."""

    def __init__(
        self,
        experiment: dict[str, Any],
        configuration: dict[str, Any] | None,
        run_dir: str | None = None,
        plan: str | None = None,
    ) -> None:
        found = find_aidrill_extension(experiment)
        if found is None:
            raise ExperimentError("the experiment has no aidrill extension")
        self.extension = AidrillExtension.model_validate(found[1])
        self.plan_path = Path(plan or os.environ.get("AIDRILL_PLAN") or DEFAULT_PLAN_PATH)
        self.plan: Plan = load_plan(self.plan_path)
        self.configuration = configuration if configuration is not None else {}
        self.secrets = collect_secret_values(experiment)
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
        self.load: LoadGenerator | None = None
        self.finished = False
        if isinstance(configuration, dict):
            configuration["aidrill_run_id"] = self.run_id
        self._write_snapshots(experiment)
        self.events.append(
            "run_started", run_id=self.run_id, experiment=self.title, plan=str(self.plan_path)
        )

    @property
    def state_dir(self) -> Path:
        configured = self.configuration.get("aidrill_state_dir")
        return Path(configured) if configured else default_state_dir()

    @property
    def sustain(self) -> float:
        return self.extension.sustain or self.plan.slo.sustain

    def _write_snapshots(self, experiment: dict[str, Any]) -> None:
        safe = redact(experiment, self.secrets)
        evidence.write_new_file(
            self.run_dir / evidence.EXPERIMENT_FILE, yaml.safe_dump(safe, sort_keys=False)
        )
        shutil.copyfile(self.plan_path, self.run_dir / evidence.PLAN_FILE)

    # -- phases --------------------------------------------------------------------
    def enforce_rollback_strategy(self, settings: dict[str, Any] | None) -> None:
        if settings is None:
            return
        rollbacks = settings.setdefault("runtime", {}).setdefault("rollbacks", {})
        if rollbacks.get("strategy") != "always":
            self.events.append(
                "rollback_strategy", strategy="always", was=rollbacks.get("strategy", "default")
            )
            rollbacks["strategy"] = "always"

    def start_load(self) -> None:
        if self.extension.target != "lab":
            raise DrillError(f"target {self.extension.target!r} has no load endpoint yet")
        lab = LabClient(self.state_dir)
        settings = self.extension.load
        profile = LoadProfile(
            settings.users,
            settings.rate_per_user,
            settings.request_timeout,
            self.extension.bucket or self.plan.slo.bucket,
        )
        self.load = LoadGenerator(
            lab.info.router_url,
            lab.info.golden_set,
            self.run_dir,
            profile,
            self.extension.max_duration,
        )
        self.load.start()
        self.events.append(
            "load_started",
            users=settings.users,
            rate_per_user=settings.rate_per_user,
            host=lab.info.router_url,
        )

    def enter_hypothesis(self) -> None:
        self.hypothesis_runs += 1
        name = "steady-state-before" if self.hypothesis_runs == 1 else "steady-state-after"
        self.enter_phase(name)

    def enter_phase(self, phase: str) -> None:
        self.phase = phase
        self.events.append("phase", phase=phase)
        if phase == "rollbacks":
            self.events.append("rollbacks_started")

    def activity_started(self, activity: dict[str, Any]) -> None:
        if self.phase == "method" and activity.get("type") == "action":
            self.events.append("fault_injected", activity=activity.get("name"))

    def activity_ended(self, activity: dict[str, Any], run: dict[str, Any] | None) -> None:
        status = (run or {}).get("status")
        name = activity.get("name")
        if self.phase == "rollbacks":
            kind = "rollback_ran"
        elif self.phase == "method" and activity.get("type") == "action":
            kind = "fault_action_ended"
        else:
            kind = "probe_ended" if activity.get("type") == "probe" else "action_ended"
        data: dict[str, Any] = {"activity": name, "status": status, "phase": self.phase}
        if run and run.get("exception"):
            data["error"] = "".join(run["exception"])[-500:]
            logger.error("activity %s failed in %s: %s", name, self.phase, data["error"])
        self.events.append(kind, **data)

    # -- the end -------------------------------------------------------------------------
    def finish(self, journal: dict[str, Any] | None) -> None:
        """Stop the load, gather evidence and write result.json and report.html."""
        if self.finished:
            return
        self.finished = True
        status = (journal or {}).get("status", "unknown")
        deviated = bool((journal or {}).get("deviated"))
        self.events.append("experiment_ended", status=status, deviated=deviated)
        self._stop_load()
        self._collect_ground_truth()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("journal", lambda: self._write_journal(journal)),
            ("result", lambda: self._write_result(status, deviated)),
            ("report", self._write_report),
        ]
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # one failing step must not lose the others
                logger.error("could not write the run's %s: %s", name, exc)
                self.events.append("evidence_error", step=name, error=str(exc))
        self.events.close()

    def abandon(self) -> None:
        """Called when chaoslib ends without an experiment-after hook: never leave load running."""
        if not self.finished:
            self.finish({"status": "failed", "deviated": False})

    def _stop_load(self) -> None:
        if self.load is not None:
            code = self.load.stop()
            self.events.append("load_stopped", exit_code=code)

    def _collect_ground_truth(self) -> None:
        if self.extension.target != "lab":
            return
        try:
            records = LabClient(self.state_dir).ground_truth(since=self.started)
        except DrillError as exc:
            self.events.append("ground_truth_unavailable", error=str(exc))
            return
        for record in records:
            when = record.pop("time")
            kind = record.pop("kind")
            self.events.append(f"{GROUND_TRUTH_PREFIX}{kind}", when=when, **record)

    def _write_journal(self, journal: dict[str, Any] | None) -> None:
        safe = redact(journal or {}, self.secrets)
        evidence.write_new_file(
            self.run_dir / evidence.JOURNAL_FILE, json.dumps(safe, indent=2, default=str)
        )

    def _write_result(self, status: str, deviated: bool) -> None:
        events = evidence.read_events(self.run_dir)
        buckets = evidence.read_timeline(self.run_dir)
        evaluation = evaluate_run(
            self.plan, self.extension.components, events, buckets, self.sustain
        )
        rollbacks = [
            {"activity": e.data.get("activity"), "status": e.data.get("status")}
            for e in events
            if e.kind == "rollback_ran"
        ]
        result = {
            "schema": "aidrill.result/1",
            "run_id": self.run_id,
            "experiment": self.title,
            "test_type": self.extension.test_type,
            "target": self.extension.target,
            "system": self.plan.system,
            "status": status,
            "deviated": deviated,
            "started": iso(self.started),
            "ended": iso(time.time()),
            "fault_injected": iso(evaluation.t_fault),
            "observation_end": iso(evaluation.window_end),
            "slo": self.plan.slo.model_dump(mode="json"),
            "components": [c.to_record() for c in evaluation.components],
            "summary": evaluation.counts(),
            "ground_truth": {
                "source": "lab",
                "rto_seconds": None
                if evaluation.ground_truth_rto is None
                else round(evaluation.ground_truth_rto, 3),
            },
            "rollbacks": rollbacks,
            "notes": evaluation.notes,
        }
        evidence.write_new_file(self.run_dir / evidence.RESULT_FILE, json.dumps(result, indent=2))

    def _write_report(self) -> None:
        from aidrill.report import write_run_report

        write_run_report(self.run_dir)
