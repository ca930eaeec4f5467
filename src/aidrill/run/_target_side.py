"""What a run does to and with its target: pre-flight, load and observation, checks at
injection, the post-flight check and heal, and the target's own record of events."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aidrill import _evidence as evidence
from aidrill._json import Configuration
from aidrill.errors import DrillError, InputError, TargetNotNominalError
from aidrill.experiment import AidrillExtension
from aidrill.load import LoadGenerator, LoadProfile
from aidrill.measure import ACTIVITIES_READ, ACTIVITY_EVENT
from aidrill.plan import Plan
from aidrill.probes import golden_set_preflight
from aidrill.run._aborted import log_ground_truth
from aidrill.run._watch import ApparatusWatch
from aidrill.targets import Endpoints, Target, target_for
from aidrill.targets.observer import TierObserver

if TYPE_CHECKING:
    from chaoslib.types import Activity, Experiment


logger = logging.getLogger(__name__)
_OBSERVE_BEFORE = 10.0
_LISTED = 50  # resource ids kept in the evidence per action (with the count of all)


class TargetSide:
    def __init__(
        self,
        extension: AidrillExtension,
        plan: Plan,
        run_dir: Path,
        run_id: str,
        events: evidence.EventLog,
        state_dir: Path | None,
        load_workers: int | None = None,
    ) -> None:
        self.load_workers = load_workers  # --load-workers, over the experiment's own
        self.extension = extension
        self.plan = plan
        self.run_dir = run_dir
        self.run_id = run_id
        self.events = events
        self.state_dir = state_dir
        self.target: Target | None = None
        self.load: LoadGenerator | None = None
        self.observer: TierObserver | None = None
        self.watch: ApparatusWatch | None = None

    def connect(self) -> Target:
        if self.target is None:
            self.target = target_for(self.extension.target, self.plan, self.state_dir)
            measured = (self.plan.component(name) for name in self.extension.components)
            self.target.focus(frozenset(c.tier for c in measured if c is not None))
        return self.target

    # -- before the steady state ---------------------------------------------------------
    def preflight(self, heal: bool, experiment: Experiment) -> None:
        """Refuse what the plan forbids (allow-list, blast radius against the live
        target), then a target that is not nominal; with ``heal``, reset it first."""
        target = self.connect()
        admission = target.admit(experiment)
        self.events.append(
            "blast_radius",
            identity=admission.identity,
            actions=[
                {"action": r.action, "touches": r.touches, "share": r.share,
                 "resources": list(r.resources[:_LISTED]), "count": len(r.resources)}
                for r in admission.resolved
            ],
            refusals=admission.refusals,
        )  # fmt: skip
        admission.raise_if_refused()
        problems = target.problems()
        self.events.append("preflight", problems=problems)
        if problems and heal:
            logger.info("the target is not nominal (%s): healing it", "; ".join(problems))
            healed = target.heal()
            self.events.append_fields("target_healed", healed.to_record())
            problems = healed.problems_after
        if not problems:
            problems, figures = golden_set_preflight(
                self._endpoints(target), self.plan.slo.quality_floor,
                self.extension.load.request_timeout,
            )  # fmt: skip
            self.events.append_fields("golden_set_checked", figures)
        if problems:
            self.events.append("preflight_failed", problems=problems)
            raise TargetNotNominalError(problems, healed=heal)

    def _endpoints(self, target: Target) -> Endpoints:
        """The target's endpoints, asked in the drill's protocol where it names one."""
        endpoints = target.endpoints()
        chosen = self.extension.protocol
        return endpoints if chosen is None else dataclasses.replace(endpoints, protocol=chosen)

    def start_load(self, on_fatal: Callable[[str], None], observing: Callable[[], bool]) -> None:
        """Locust against the target's inference endpoint, and the tiers' observer; both
        watched (``on_fatal`` when the load stops while ``observing``)."""
        endpoints = self._endpoints(self.connect())
        settings = self.extension.load
        profile = LoadProfile(
            settings.users,
            settings.rate_per_user,
            settings.request_timeout,
            self.extension.bucket or self.plan.slo.bucket,
            load_workers(settings.workers, self.load_workers),
        )
        self.load = LoadGenerator(
            endpoints.inference,
            endpoints.golden_set,
            self.run_dir,
            profile,
            self.extension.max_duration,
            endpoints.index_queries,
            endpoints.http,
            endpoints.protocol,
            endpoints.vector_store,
        )
        self.load.start()
        self.observer = TierObserver(
            endpoints, self.run_dir, self.run_id, self.extension.max_duration
        )
        self.observer.start()
        self.watch = ApparatusWatch(
            self.load.parts() + self.observer.parts(), self.events, on_fatal, observing
        )
        self.watch.start()
        self.events.append(
            "load_started",
            users=settings.users,
            rate_per_user=settings.rate_per_user,
            host=endpoints.inference,
            protocol=endpoints.protocol.kind,
        )

    def observe_before(self) -> None:
        """Let canaries and probes record before the steady state is checked: an RPO
        reaches back only as far as the observation does."""
        seconds = self.extension.observe_before
        if seconds is None:
            stateful = [self.plan.component(name) for name in self.extension.components]
            seconds = _OBSERVE_BEFORE if any(c and c.rpo is not None for c in stateful) else 0.0
        if seconds > 0:
            self.events.append("observing_before", seconds=seconds)
            time.sleep(seconds)

    # -- during and after ----------------------------------------------------------------
    def check_injection(self, activity: Activity, configuration: Configuration) -> None:
        self.connect().check_injection(activity, configuration, self.extension.full_outage)

    def audit(self) -> None:
        if self.observer is not None:
            try:
                self.observer.audit()
            except Exception as exc:  # evidence of one tier must not break the run
                self.events.append("evidence_error", step="canary-audit", error=str(exc))

    def stop_load(self) -> None:
        if self.watch is not None:
            self.watch.check_now()  # a part that stopped just now is still recorded
            self.watch.stop()
            self.watch = None
        if self.observer is not None:
            if not (self.run_dir / evidence.CANARY_AUDIT_FILE).exists():
                self.audit()
            try:
                self.observer.stop()
            except Exception as exc:
                self.events.append("evidence_error", step="probes", error=str(exc))
            self.observer = None
        if self.load is not None:
            code = self.load.stop()
            self.events.append("load_stopped", exit_code=code)
            self.load = None

    def check_after(self, rollback_failed: bool) -> None:
        """After the rollbacks the target must be nominal again; when a rollback failed
        or it is not, reset it and check again, and record both in the evidence."""
        target = self.target
        if target is None:
            return
        try:
            problems = target.wait_nominal()
        except DrillError as exc:
            self.events.append("postflight_failed", problems=[f"the target does not answer: {exc}"])
            return
        self.events.append("postflight", problems=problems)
        if problems:
            self.events.append("postflight_failed", problems=problems)
        if not problems and not rollback_failed:
            return
        logger.error("the target is not nominal after the rollbacks: resetting it")
        try:
            healed = target.heal()
        except DrillError as exc:
            self.events.append("target_reset", error=str(exc), healed=False)
            logger.error("the target could not be reset: %s", exc)
            return
        self.events.append_fields("target_reset", healed.to_record())
        if not healed.healed:
            logger.error(
                "the target is still not nominal after a reset: %s",
                "; ".join(healed.problems_after),
            )

    def collect_activities(self, since: float) -> None:
        """What the target's automation did during the run, read through its own API
        (Auto Scaling activities, cluster events, the lab supervisor's list): the
        evidence a measurement may name as the cause of a recovery that did not come."""
        try:
            found = self.connect().activities(since)
        except Exception as exc:  # evidence beside the measurement: never worth the run's end
            self.events.append("activities_unavailable", error=f"{type(exc).__name__}: {exc}")
            return
        if found is None:
            self.events.append(
                "activities_unavailable", error="the target keeps no activity log aidrill can read"
            )
            return
        self.events.append(ACTIVITIES_READ, count=len(found))
        for activity in found:
            self.events.append_fields(ACTIVITY_EVENT, activity.to_record(), when=activity.time)

    def collect_ground_truth(self, since: float) -> None:
        """What the target itself recorded during the run (a lab keeps this), beside
        what was measured, so tests and benchmarks can compare the two."""
        try:
            records = self.connect().ground_truth(since)
        except DrillError as exc:
            self.events.append("ground_truth_unavailable", error=str(exc))
            return
        log_ground_truth(self.events, records)


def load_workers(declared: int, given: int | None) -> int:
    """Locust workers for this run: ``--load-workers`` (handed to the run's control as
    an argument) over the experiment's ``load.workers``."""
    if given is None:
        return declared
    if not isinstance(given, int) or isinstance(given, bool) or not 0 <= given <= 64:
        raise InputError(f"load_workers={given!r}: a whole number between 0 and 64")
    return given
