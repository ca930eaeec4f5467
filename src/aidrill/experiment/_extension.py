"""aidrill's settings inside an experiment: ``extensions: [{name: aidrill, ...}]``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aidrill._durations import Duration
from aidrill._scope import ScopeKind
from aidrill.kinds import TargetName
from aidrill.plan import Guardrails, ProtocolSettings


class DeclaredScope(BaseModel):
    """The blast radius of one of the team's own actions (a process, HTTP or python
    provider aidrill does not know): what it takes away, and where."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    region: str
    kind: ScopeKind
    share: float | None = Field(default=None, gt=0.0, le=1.0)  # of the region's GPU nodes
    removes_serving: bool = Field(default=True, alias="removes-serving")


class LoadSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    users: int = Field(default=10, ge=1, le=1000)
    rate_per_user: float = Field(default=3.0, gt=0, le=100)
    request_timeout: Duration = 2.0
    # Locust workers under one master (0: a single Locust process); on real
    # infrastructure more join from other machines with `locust --worker --master-host`.
    workers: int = Field(default=0, ge=0, le=64)


class Participant(BaseModel):
    """A person in a drill, by name, in a role (runs it, observes it, approves it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    role: str = Field(min_length=1)
    # Independent of the system's owners and builders (an internal audit or a second
    # team): DORA and ISO 22301 ask who tested, not only what.
    independent: bool = False

    @classmethod
    def parse(cls, text: str) -> Participant:
        """``"Ada Lovelace:incident commander"``, or ``"Grace Hopper:observer:independent"``."""
        name, _, rest = text.partition(":")
        role, _, flag = rest.partition(":")
        if not name.strip() or not role.strip() or flag.strip() not in ("", "independent"):
            raise ValueError(f"expected NAME:ROLE or NAME:ROLE:independent, got {text!r}")
        return cls(name=name.strip(), role=role.strip(), independent=bool(flag.strip()))


class AidrillExtension(BaseModel):
    """Which components a run measures, under what load and for how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["aidrill"]
    components: list[str] = Field(min_length=1)
    test_type: Literal["component", "full-region", "chaos"] = Field(alias="test-type")
    target: TargetName = "lab"
    load: LoadSettings = LoadSettings()
    max_duration: Duration = Field(default=600.0, alias="max-duration")
    bucket: Duration | None = None
    sustain: Duration | None = None
    guardrails: Guardrails | None = None
    full_outage: bool = Field(default=False, alias="full-outage")
    # How long the canaries and probes observe before the steady-state check: an RPO
    # can only be measured up to how far back the observation reaches. Default: 10 s
    # when a component with an RPO target is measured, else none.
    observe_before: Duration | None = Field(default=None, alias="observe-before")
    # A pause after a fault ends as soon as every measured component showed the fault's
    # impact and has held a recovery for the sustain (the pause is the most it waits):
    # a drill that proves its recovery early need not watch the rest of its window.
    hold_until_recovered: bool = Field(default=False, alias="hold-until-recovered")
    # The protocol this drill's load and golden-set pre-flight speak, where it is not
    # the plan's (the lab serves several: a drill through its OpenAI-compatible API).
    protocol: ProtocolSettings | None = None
    # Blast radius of the experiment's own actions, by action name.
    scopes: dict[str, DeclaredScope] = {}
    participants: list[Participant] = []
    secret_configuration: list[str] = Field(default=[], alias="secret-configuration")
