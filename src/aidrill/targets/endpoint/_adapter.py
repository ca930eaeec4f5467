"""The endpoint target: pre-flight from the endpoint's health URL (where the plan
names one; the golden set's pre-flight follows for every target), endpoints from the
plan, and each fault's blast radius from the scope its experiment declares."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aidrill._event import Event
from aidrill._json import Configuration
from aidrill.errors import ProbeSetError
from aidrill.experiment import declared_scope, extension_scopes
from aidrill.plan import Plan
from aidrill.probes.sets import CheckOutcome
from aidrill.targets import Admission, Endpoints, Heal, Resolved, wait_for_nothing_off
from aidrill.targets._endpoints import http_settings, vector_store_settings
from aidrill.targets._limits import apply_limits
from aidrill.targets._target import (
    Activity,
    LeftFault,
    limit_refusals,
    method_actions,
    undeclared_action,
)

if TYPE_CHECKING:
    from chaoslib.types import Action, Experiment

    from aidrill.targets.endpoint import EndpointEstate

_HEALTH_TIMEOUT = 2.0


class EndpointTarget:
    kind = "endpoint"

    def __init__(self, plan: Plan, estate: EndpointEstate) -> None:
        self.plan = plan
        self.estate = estate

    def problems(self) -> list[str]:
        """The health URL's answer, where the plan names one (the golden set's
        pre-flight asks the model itself)."""
        if self.estate.health is None:
            return []
        status = self._health_status()
        if 200 <= status < 300:
            return []
        answer = "does not answer" if status == 0 else f"answers {status}"
        return [f"the endpoint's health check {self.estate.health} {answer}"]

    def health_signals(self) -> dict[str, bool]:
        """The endpoint's own health URL as a load balancer polling it would see it:
        healthy on a 2xx answer within the timeout, unhealthy on any other answer or
        none. Polled beside the load (``health.jsonl``): what the server claimed while
        users were served, and the moment its health check first reacted to a fault.
        Named without credentials or query (secrets never reach evidence)."""
        assert self.estate.health is not None
        status = self._health_status()
        return {_signal_name(self.estate.health): 200 <= status < 300}

    def _health_status(self) -> int:
        """The health URL's status code; 0 when it does not answer in time."""
        assert self.estate.health is not None
        from aidrill._http import HttpClient

        client = HttpClient(http_settings(self.plan, self.estate))
        try:
            status, _ = client.json("GET", self.estate.health, timeout=_HEALTH_TIMEOUT)
        finally:
            client.close()
        return status

    def focus(self, tiers: frozenset[str]) -> None:
        pass  # an endpoint has no data tiers aidrill reaches

    def wait_nominal(self) -> list[str]:
        return wait_for_nothing_off(self.problems)

    def heal(self) -> Heal:
        """Nothing to clear: aidrill keeps no fault on an endpoint it does not own (each
        rollback undoes its fault); wait (bounded) for nominal."""
        started = time.monotonic()
        before = self.problems()
        return Heal(before, self.wait_nominal(), [], time.monotonic() - started)

    def endpoints(self) -> Endpoints:
        return Endpoints(
            inference=self.estate.inference,
            golden_set=self.plan.path(self.estate.golden_set),
            primary=self.plan.primary_region,
            dr=self.plan.dr_region,
            serving_health=None,
            index_queries=(
                self.plan.path(self.estate.index_queries) if self.estate.index_queries else None
            ),
            vector_store=vector_store_settings(self.estate.vector_store),
            http=http_settings(self.plan, self.estate),
            protocol=self.estate.protocol,
            health_signals=self.health_signals if self.estate.health is not None else None,
        )

    def ground_truth(self, since: float) -> list[Event]:
        return []

    def activities(self, since: float) -> list[Activity] | None:
        return None  # an endpoint exposes no automation log

    def faults_left_behind(self) -> list[LeftFault]:
        return []

    def clear_faults(self) -> list[LeftFault]:
        return []

    def check_injection(
        self, activity: Action, configuration: Configuration, full_outage: bool
    ) -> None:
        pass  # every fault's declared scope was admitted before the run began

    def run_check(self, check: Any) -> CheckOutcome:
        raise ProbeSetError(
            f"check {getattr(check, 'name', check)!r} asks the lab; an endpoint's probe set "
            "uses inference checks"
        )

    def resolve(self, experiment: Experiment) -> list[Resolved]:
        """Each fault action as its experiment declares it; one that declares nothing is
        refused (aidrill cannot see what a team's own action touches)."""
        declared = extension_scopes(experiment)
        found = []
        for name, provider in method_actions(experiment):
            scope = declared_scope(provider)
            if scope is not None and scope.kind == "recovery":
                found.append(Resolved(name, "a recovery step (takes nothing away)"))
                continue
            what = provider.get("path") or f"{provider.get('module')}.{provider.get('func')}"
            found.append(undeclared_action(name, str(what), None, declared.get(name)))
        return apply_limits(self.plan, experiment, found)

    def admit(self, experiment: Experiment) -> Admission:
        resolved = self.resolve(experiment)
        return Admission(
            f"the endpoint {self.estate.inference}", resolved, limit_refusals(resolved)
        )


def _signal_name(url: str) -> str:
    """``GET host:port/path``: the health URL without user, password or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return f"GET {host}{parts.path or '/'}"
