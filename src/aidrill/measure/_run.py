"""From one run's evidence (events + timeline) to per-component results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from aidrill.measure._blind import (
    HEALTH_POLL_SOURCE,
    HealthSample,
    blind_not_measured,
    health_reaction,
    served_blind,
)
from aidrill.measure._coverage import ApparatusStop, explain_gap, record_gaps
from aidrill.measure._degradation import Degradation, judge_degradation
from aidrill.measure._line import texts
from aidrill.measure._phases import (
    Phase,
    health_mark,
    new_node_marks,
    over_reference,
    recovery_phases,
    recovery_step_marks,
)
from aidrill.measure._records import Bucket, Event
from aidrill.measure._recovery import HealthRule, RecoveryMeasurement, measure_recovery
from aidrill.measure._rpo import (
    ArtifactVersions,
    CanaryWrite,
    RpoMeasurement,
    Sample,
    artifact_rpo,
    feature_store_rpo,
    judge_rpo,
    pipeline_rpo,
    probe_buckets,
    registry_rpo,
    vector_canary_rpo,
)
from aidrill.measure._validity import Validity, judge_validity
from aidrill.measure._verdict import Verdict, judge_rto
from aidrill.measure._wire import (
    Achieved,
    BlindRecord,
    ComponentRecord,
    ComponentTarget,
    Episode,
    Gap,
    Relapse,
    iso,
)
from aidrill.plan import Component, Plan

GROUND_TRUTH_PREFIX = "lab:"
# What each series is made of, for the sentence that names a gap in it.
_SERIES_WORDS = {"inference": "load answers", "search": "search answers"}


_SEVERITY = {"missed": 3, "inconclusive": 2, "not measured": 1, "met": 0}


@dataclass(frozen=True)
class TierEvidence:
    """What a run recorded besides the load: probe samples, canaries, artifact versions."""

    samples: Sequence[Sample] = ()
    canary: Sequence[CanaryWrite] = ()
    index_canary: Sequence[CanaryWrite] = ()
    canary_surviving: Sequence[int] | None = None
    canary_audited_at: float = float("inf")
    artifact_versions: ArtifactVersions = field(default_factory=ArtifactVersions)
    registry_canary: Sequence[CanaryWrite] = ()
    registry_surviving: Sequence[int] | None = None
    registry_audited_at: float = float("inf")
    search: Sequence[Bucket] = ()
    regions: tuple[str, str] | None = None  # (primary, dr)
    health: Sequence[HealthSample] = ()  # the target's health signals, polled by aidrill


@dataclass(frozen=True)
class TierFigures:
    """What a tier measures beside its recovery: the inference tier's time served
    blind, the vector index's recall around the fault, the freshness of what a data
    tier served. None: not measured for this tier (left out of the record)."""

    blind: BlindRecord | None = None
    recall: tuple[float | None, float | None] | None = None  # (before fault, after recovery)
    freshness: tuple[float, bool | None] | None = None  # (worst seconds, within the RPO)


@dataclass(frozen=True)
class ComponentResult:
    component: Component
    measurement: RecoveryMeasurement | None
    verdict: Verdict
    cause: str | None = None
    rto_verdict: Verdict | None = None
    rpo: RpoMeasurement | None = None
    rpo_verdict: Verdict | None = None
    episodes: list[Episode] = field(default_factory=list)
    figures: TierFigures = field(default_factory=TierFigures)
    resolution: float = 1.0  # the bucket width the series was measured at
    degradation: Degradation | None = None  # judged where the plan sets a budget
    phases: list[Phase] = field(default_factory=list)  # where the RTO went

    def to_record(self) -> ComponentRecord:
        component = self.component
        return ComponentRecord(
            name=component.name,
            tier=component.tier,
            target=ComponentTarget(rto_seconds=component.rto, rpo_seconds=component.rpo),
            rationale=component.rationale,
            achieved=self._achieved(),
            verdict=self.verdict.status,
            explanation=self.verdict.reason,
            rto_verdict=(self.rto_verdict or self.verdict).status,
            rpo_verdict=self.rpo_verdict.status if self.rpo_verdict else None,
            cause=self.cause,
            degradation=self.degradation.to_record() if self.degradation else None,
        )

    def _achieved(self) -> Achieved:
        """What was measured; a figure the measurement does not have is left out of the
        record (``exclude_unset``), never written as null."""
        m = self.measurement
        if m is None:
            achieved = Achieved(rto_seconds=None, recovered=None)
        else:
            achieved = Achieved(
                rto_seconds=_round(m.rto),
                recovered=m.recovered,
                impact=m.impact,
                detection_delay_seconds=_round(m.detection_delay),
                # When users were first hurt, apart from how long recovery took after it:
                # a fault felt late is not a slow recovery.
                time_to_impact_seconds=_round(
                    None if m.t_first_unhealthy is None else m.t_first_unhealthy - m.t_fault
                ),
                recovery_after_impact_seconds=_round(
                    None
                    if m.t_first_unhealthy is None or m.t_recovered is None
                    else max(0.0, m.t_recovered - m.t_first_unhealthy)
                ),
                first_unhealthy=iso(m.t_first_unhealthy),
                first_success=iso(m.t_first_success),
                recovered_at=iso(m.t_recovered),
                observation_window_seconds=_round(m.window),
                provable_until_seconds=_round(m.provable_until),
                # Not recovered: no recovery could have started before this (from the
                # fault), by the unhealthy buckets inside each candidate's sustain.
                ruled_out_until_seconds=_round(m.ruled_out),
                sustain_seconds=m.sustain,
                detected_at=iso(m.t_detected),
                resolution_seconds=self.resolution,
                fault_at=iso(m.t_fault),
            )
            if m.gaps:
                # "from" is a Python keyword: these records are made from their wire form.
                gaps = [
                    Gap.model_validate(
                        {"from": iso(g.start), "to": iso(g.end), "seconds": _round(g.seconds)}
                    )
                    for g in m.gaps
                ]
                achieved = _with(achieved, coverage_gaps=gaps)
            if m.relapses:
                # Times from the fault, like the RTO, and the instants themselves.
                relapses = [
                    Relapse.model_validate({
                        "from": iso(r.start), "to": iso(r.end),
                        "from_fault_seconds": _round(r.start - m.t_fault),
                        "seconds": _round(r.seconds),
                    })
                    for r in m.relapses
                ]  # fmt: skip
                achieved = _with(achieved, relapses=relapses)
            if self.phases:
                phases = [p.to_record(m.t_fault, self.component.reference) for p in self.phases]
                achieved = _with(
                    achieved, phases=phases, phase_over_reference=over_reference(phases)
                )
            if self.episodes:
                achieved = _with(achieved, episodes=self.episodes)
        figures = self.figures
        if figures.blind is not None:
            achieved = _with(achieved, blind=figures.blind)
        if figures.recall is not None:
            before, after = figures.recall
            achieved = _with(achieved, recall_before_fault=before, recall_after_recovery=after)
        if figures.freshness is not None:
            worst, within = figures.freshness
            achieved = _with(achieved, worst_freshness_seconds=worst, freshness_within_rpo=within)
        if self.rpo is not None:
            seconds = self.rpo.seconds
            achieved = _with(
                achieved,
                rpo_seconds=None
                if seconds is None
                else "lost"
                if seconds == float("inf")
                else _round(seconds),
                rpo_explanation=self.rpo.reason,
                rpo_detail=self.rpo.detail,
                rpo_at_least=self.rpo.at_least,
            )
        return achieved


def _with(achieved: Achieved, **figures: object) -> Achieved:
    """``achieved`` with ``figures`` set (and so written). Each is checked against its
    field's type when the run's record is parsed, before result.json is written."""
    unknown = set(figures) - set(Achieved.model_fields)
    if unknown:
        raise ValueError(f"Achieved has no field {', '.join(sorted(unknown))}")
    return achieved.model_copy(update=figures)


@dataclass(frozen=True)
class RunEvaluation:
    t_fault: float | None
    window_end: float | None
    components: list[ComponentResult]
    ground_truth_rto: float | None = None
    ground_truth_blind: float | None = None
    notes: list[str] = field(default_factory=list)
    validity: Validity = field(default_factory=Validity)

    def counts(self) -> dict[str, int]:
        counts = {"met": 0, "missed": 0, "inconclusive": 0, "not measured": 0}
        for result in self.components:
            counts[result.verdict.status] += 1
        return counts


def health_rule_for(plan: Plan, min_answers: int = 1) -> HealthRule:
    slo = plan.slo
    return HealthRule(
        slo.success_ratio,
        slo.p95_latency,
        slo.quality_floor,
        min_answers,
        slo.coverage_grace,
        max_ttft_p95=slo.ttft_p95,
        max_itl_p95=slo.itl_p95,
        min_tokens_per_second=slo.min_tokens_per_second,
    )


@dataclass(frozen=True)
class Coverage:
    """What the evidence of a run must hold: the answers per bucket each series needs
    (``min_answers``: series name -> count; a series not named needs one), where
    coverage starts (the steady-state check) and what of the apparatus stopped."""

    min_answers: Mapping[str, int] = field(default_factory=dict)
    covered_from: float | None = None
    stops: tuple[ApparatusStop, ...] = ()

    def answers(self, series: str) -> int:
        return max(1, int(self.min_answers.get(series, 1)))


def apparatus_stops(events: Sequence[Event]) -> tuple[ApparatusStop, ...]:
    """Every part of the measuring apparatus the run recorded stopping or degrading."""
    return tuple(
        ApparatusStop(
            e.time,
            str(e.data.get("part") or "a part of the apparatus"),
            tuple(texts(e.data.get("series"))),
            str(e.data.get("how") or "stopped"),
        )
        for e in events
        if e.kind == "apparatus_stopped"
    )


def evaluate_run(
    plan: Plan,
    component_names: Sequence[str],
    events: Sequence[Event],
    buckets: Sequence[Bucket],
    sustain: float,
    tiers: TierEvidence | None = None,
    degradation: bool = False,
    min_answers: Mapping[str, int] | None = None,
) -> RunEvaluation:
    """Measure every component the experiment names, from evidence only; with
    ``degradation`` (a chaos test), also how gracefully each component with a
    degradation budget behaved during the fault. ``min_answers``: what each series
    must hold per bucket (see :class:`Coverage`).

    An invalid run (see :func:`judge_validity`) measures nothing: every component is
    *not measured*, with the first reason.
    """
    tiers = tiers or TierEvidence(regions=(plan.primary_region, plan.dr_region))
    validity = judge_validity(events)
    coverage = Coverage(
        dict(min_answers or {}), _steady_state_start(events), apparatus_stops(events)
    )
    t_fault = _first_time(events, "fault_injected")
    window_end = _first_time(events, "rollbacks_started") or _first_time(events, "load_stopped")
    if window_end is None and buckets:
        window_end = max(b.end for b in buckets)
    notes: list[str] = []
    results = []
    for name in component_names:
        component = plan.component(name)
        if component is None:
            notes.append(f"component {name!r} is not in the plan")
            continue
        if not validity.valid:
            why = f"the run is invalid: {validity.reasons[0].reason}"
            results.append(ComponentResult(component, None, Verdict("not measured", why)))
            continue
        rto = _evaluate_component(
            plan,
            component,
            events,
            buckets,
            t_fault,
            window_end,
            sustain,
            tiers,
            coverage,
            degradation,
        )
        measured = _with_rpo(plan, rto, tiers, t_fault, window_end, coverage)
        fresh = _freshness(component, buckets, tiers, t_fault, window_end)
        results.append(replace(measured, figures=replace(measured.figures, freshness=fresh)))
    return RunEvaluation(
        t_fault,
        window_end,
        results,
        _ground_truth_rto(events, t_fault, window_end),
        _ground_truth_blind(events, t_fault, window_end),
        notes,
        validity,
    )


def _evaluate_component(
    plan: Plan,
    component: Component,
    events: Sequence[Event],
    buckets: Sequence[Bucket],
    t_fault: float | None,
    window_end: float | None,
    sustain: float,
    tiers: TierEvidence,
    coverage: Coverage,
    graceful: bool = False,
) -> ComponentResult:
    series, buckets, rule = _series(plan, component, buckets, tiers, coverage)
    if series not in ("inference", "search") and not buckets:
        return ComponentResult(
            component,
            None,
            Verdict("not measured", f"no {component.tier} series is recorded by this run"),
        )
    if t_fault is None or window_end is None:
        return ComponentResult(
            component,
            None,
            Verdict("not measured", "no fault was injected, so there is nothing to recover from"),
        )
    if not buckets:
        return ComponentResult(
            component,
            None,
            Verdict("not measured", "the load produced no timeline, so recovery cannot be judged"),
        )
    covered_from = coverage.covered_from
    measurement = measure_recovery(buckets, t_fault, window_end, rule, sustain, covered_from)
    faults = _faults(events)
    first_bad_end = measurement.t_detected
    if first_bad_end is not None and len(faults) > 1:
        # The fault that caused the impact is the last one injected before the first
        # unhealthy bucket closed (a replication pause has none; the primary's loss that
        # follows it does); one injected after that bucket cannot have made it unhealthy.
        causing = [t for t, _ in faults if t < first_bad_end]
        if causing and causing[-1] > t_fault:
            measurement = measure_recovery(
                buckets, causing[-1], window_end, rule, sustain, covered_from
            )
    cause = None if measurement.recovered else _cause(events, t_fault, window_end)
    phases = []
    activities = [e for e in events if e.kind == ACTIVITY_EVENT]  # the target's own API
    # The serving tier's own: a data tier's (a managed store's failover) is not its.
    serving = [e for e in activities if not e.data.get("tier")]
    if measurement.impact and measurement.t_recovered:
        if component.tier == "inference":
            # A health signal turning unhealthy is the system detecting the fault too (a
            # Route 53 check failing, a node's health endpoint down): a detect mark beside
            # the target's own activities. The load's answers name the node that served,
            # where the server sends it: a replacement's first answers mark the load step.
            marks = [*serving, *new_node_marks(buckets, measurement.t_fault)]
            turned = health_reaction(measurement.t_fault, tiers.health)
            if turned is not None:
                at, reaction = turned
                marks.append(health_mark(at, ACTIVITY_EVENT, HEALTH_POLL_SOURCE, reaction))
        else:
            # A data tier: its own activities, and the experiment's recovery steps (a
            # restore from a snapshot, a registry copied back) as the runbook acting.
            own = [e for e in activities if e.data.get("tier") == component.tier]
            marks = [*own, *recovery_step_marks(events)]
        phases = recovery_phases(
            measurement.t_fault, measurement.t_recovered, marks, buckets[0].width,
            serving=component.tier == "inference",
        )  # fmt: skip
    episodes = _episodes(buckets, faults, window_end, rule, sustain) if len(faults) > 1 else []
    blind_record: BlindRecord | None = None
    recall: tuple[float | None, float | None] | None = None
    if component.tier == "inference":
        limit = component.max_blind if component.max_blind is not None else plan.slo.max_blind
        if serving or tiers.health or any(e.kind == ACTIVITIES_READ for e in events):
            blind = served_blind(measurement.t_fault, window_end, serving, tiers.health)
            blind_record = blind.to_record(limit, users_hurt=measurement.impact)
        else:
            blind_record = blind_not_measured(
                window_end - measurement.t_fault, limit, users_hurt=measurement.impact
            )
    if component.tier == "vector-index" and tiers.search:
        before = [b for b in buckets if b.end <= t_fault]
        after = [
            b
            for b in buckets
            if measurement.t_recovered is not None
            and measurement.t_recovered <= b.start < window_end
        ]
        recall = (_mean_quality(before), _mean_quality(after))
    gap = measurement.uncovered
    uncovered = None
    if gap is not None:
        what = _SERIES_WORDS.get(series, f"{series} probe samples")
        tolerance = measurement.resolution + rule.grace
        uncovered = explain_gap(
            gap, measurement.t_fault, window_end, what, series, coverage.stops, tolerance
        )
    verdict = judge_rto(component.rto, measurement, cause, uncovered)
    if blind_record is not None and blind_record.over_limit:
        verdict = Verdict(verdict.status, f"{verdict.reason}; {blind_record.summary}")
    degradation = None
    if graceful and component.degradation is not None:
        degradation = judge_degradation(
            buckets, measurement.t_fault, window_end, rule, component.degradation,
            recovered_within_rto=verdict.status == "met",
        )  # fmt: skip
    return ComponentResult(
        component,
        measurement,
        verdict,
        cause,
        episodes=episodes,
        figures=TierFigures(blind=blind_record, recall=recall),
        resolution=buckets[0].width,
        degradation=degradation,
        phases=phases,
    )


def _freshness(
    component: Component,
    buckets: Sequence[Bucket],
    tiers: TierEvidence,
    t_fault: float | None,
    window_end: float | None,
) -> tuple[float, bool | None] | None:
    """The oldest data served during the observation window (seconds, and whether
    within the component's RPO): the features behind the predictions (feature store),
    the index data behind the searches (vector index), from the ages every answer
    reported. None: no answer of such a tier reported an age."""
    series = {"feature-store": buckets, "vector-index": tiers.search}.get(component.tier)
    if not series or t_fault is None or window_end is None:
        return None
    ages = [b.max_age for b in series if b.max_age is not None and t_fault <= b.start < window_end]
    if not ages:
        return None
    worst = round(max(ages), 3)
    return worst, None if component.rpo is None else worst <= component.rpo


def _mean_quality(buckets: Sequence[Bucket]) -> float | None:
    scored = sum(b.scored for b in buckets)
    return round(sum(b.correct for b in buckets) / scored, 4) if scored else None


def _series(
    plan: Plan,
    component: Component,
    buckets: Sequence[Bucket],
    tiers: TierEvidence,
    coverage: Coverage,
) -> tuple[str, Sequence[Bucket], HealthRule]:
    """The series a component is judged on (the load's answers, the search answers or
    its tier's probe samples in buckets) and the rule its buckets are judged by."""
    series = "inference"
    if component.tier == "vector-index" and tiers.search:
        buckets, series = tiers.search, "search"
    elif component.tier != "inference":
        series = component.tier
        buckets = probe_buckets(tiers.samples, component.tier, plan.slo.bucket)
    rule = health_rule_for(plan, coverage.answers(series))
    if series not in ("inference", "search"):
        rule = replace(rule, max_p95=float("inf"))  # probes carry no user latency
    return series, buckets, rule


def recovered_since_last_fault(
    plan: Plan,
    component_names: Sequence[str],
    events: Sequence[Event],
    buckets: Sequence[Bucket],
    sustain: float,
    tiers: TierEvidence,
    now: float,
    min_answers: Mapping[str, int] | None = None,
) -> bool:
    """Whether every measured component showed the latest fault's impact and has held a
    recovery since for ``sustain``, in buckets closed by ``now``: what a hold after a
    fault may end on. A component with no impact yet keeps the hold (the impact may
    still come), and so does one without a series."""
    faults = _faults(events)
    if not faults:
        return False
    t_fault = faults[-1][0]
    coverage = Coverage(dict(min_answers or {}))
    judged = False
    for name in component_names:
        component = plan.component(name)
        if component is None:
            continue
        _, series, rule = _series(plan, component, buckets, tiers, coverage)
        closed = [b for b in series if b.end <= now]
        if not closed:
            return False
        seen_until = max(b.end for b in closed)
        measurement = measure_recovery(closed, t_fault, seen_until, rule, sustain)
        if not (measurement.impact and measurement.recovered):
            return False
        judged = True
    return judged


def _faults(events: Sequence[Event]) -> list[tuple[float, str]]:
    return sorted(
        (e.time, str(e.data.get("activity") or "fault"))
        for e in events
        if e.kind == "fault_injected"
    )


def _episodes(
    buckets: Sequence[Bucket],
    faults: list[tuple[float, str]],
    window_end: float,
    rule: HealthRule,
    sustain: float,
) -> list[Episode]:
    """One recovery measurement per fault, each observed until the next fault. An
    episode the next fault cut short before it recovered cannot be judged: it is
    *superseded* (``recovered`` None), never "not recovered"; the last episode runs to
    the window's end and is judged."""
    found = []
    for i, (start, activity) in enumerate(faults):
        last = i + 1 == len(faults)
        end = window_end if last else faults[i + 1][0]
        m = measure_recovery(buckets, start, end, rule, sustain)
        superseded = not m.recovered and not last
        episode = Episode(
            fault=activity,
            injected_at=iso(start),
            impact=m.impact,
            rto_seconds=_round(m.rto),
            recovered=None if superseded else m.recovered,
            observation_window_seconds=_round(m.window),
            provable_until_seconds=_round(m.provable_until),
        )
        if superseded:
            episode = episode.model_copy(update={"superseded_by": faults[i + 1][1]})
        found.append(episode)
    return found


_CANARIES = {
    "feature-store": ("feature-store-canary", "canary writes"),
    "vector-index": ("index-canary", "canary vectors"),
    "model-registry": ("registry-canary", "canary registry changes"),
}


def _canary_gap(
    plan: Plan,
    component: Component,
    tiers: TierEvidence,
    t_fault: float,
    window_end: float | None,
    coverage: Coverage,
) -> str | None:
    """A canary series must cover what its RPO reads: the feature store's and the
    registry's from the steady-state check until the audit (or the window's end), the
    vector index's until the fault."""
    if component.tier not in _CANARIES:
        return None
    series, what = _CANARIES[component.tier]
    records = {
        "feature-store": tiers.canary,
        "vector-index": tiers.index_canary,
        "model-registry": tiers.registry_canary,
    }[component.tier]
    end = {
        "feature-store": min(tiers.canary_audited_at, window_end or t_fault),
        "vector-index": t_fault,
        "model-registry": min(tiers.registry_audited_at, window_end or t_fault),
    }[component.tier]
    start = t_fault if coverage.covered_from is None else min(coverage.covered_from, t_fault)
    width = plan.slo.bucket
    tolerance = width + plan.slo.coverage_grace
    times = [w.time for w in records]
    gaps = record_gaps(times, start, end, width, tolerance)
    if not gaps:
        return None
    return explain_gap(gaps[0], t_fault, end, what, series, coverage.stops, tolerance)


def _with_rpo(
    plan: Plan,
    result: ComponentResult,
    tiers: TierEvidence,
    t_fault: float | None,
    window_end: float | None,
    coverage: Coverage,
) -> ComponentResult:
    """Add the RPO of a stateful component and combine both verdicts (the worse wins)."""
    component = result.component
    if component.rpo is None:
        return result
    rpo: RpoMeasurement | None = None
    missing = (
        None
        if t_fault is None
        else _canary_gap(plan, component, tiers, t_fault, window_end, coverage)
    )
    if t_fault is None:
        rpo = None
    elif missing is not None:
        rpo = RpoMeasurement(None, missing)
    elif component.tier == "feature-store":
        rpo = feature_store_rpo(tiers.canary, tiers.canary_surviving, tiers.canary_audited_at)
    elif component.tier == "vector-index":
        rpo = vector_canary_rpo(tiers.index_canary, tiers.samples, t_fault)
    elif component.tier in ("training", "evaluation"):
        rpo = pipeline_rpo(tiers.samples, component.tier, t_fault)
    elif component.tier == "model-registry":
        rpo = registry_rpo(
            tiers.registry_canary, tiers.registry_surviving, tiers.registry_audited_at
        )
    elif component.tier == "model-artifacts":
        primary, dr = tiers.regions or (plan.primary_region, plan.dr_region)
        rpo = artifact_rpo(tiers.artifact_versions, primary, dr, t_fault)
    rpo_verdict = judge_rpo(component.rpo, rpo)
    if rpo_verdict is None:
        return result
    rto_verdict = result.verdict
    worse = max((rto_verdict, rpo_verdict), key=lambda v: _SEVERITY[v.status])
    if rto_verdict.status == "not measured" and rpo_verdict.status != "not measured":
        worse = rpo_verdict if rpo_verdict.status != "met" else rto_verdict
    combined = Verdict(worse.status, f"{rto_verdict.reason}; {rpo_verdict.reason}")
    return ComponentResult(
        component,
        result.measurement,
        combined,
        result.cause,
        rto_verdict=rto_verdict,
        rpo=rpo,
        rpo_verdict=rpo_verdict,
        episodes=result.episodes,
        figures=result.figures,
        resolution=result.resolution,
        degradation=result.degradation,
        phases=result.phases,
    )


ACTIVITY_EVENT = "target_activity"  # what the run read of the target's own activities
# The run read the target's activity log (even when it held nothing): a blind time can
# be measured from it.
ACTIVITIES_READ = "activities_read"


def _cause(events: Sequence[Event], start: float, end: float) -> str | None:
    """What stood in the way of recovery, as the target's own automation reported it
    through its API during the window (a failed launch, a pod that could not be
    placed): the first such activity. Never the target's ground-truth log."""
    for event in events:
        if (
            start <= event.time <= end
            and event.kind == ACTIVITY_EVENT
            and event.data.get("status") == "failed"
        ):
            said = str(event.data.get("cause") or "").strip()
            what = f"{event.data.get('source')}: {event.data.get('action')} failed"
            return f"{said} ({what})" if said else what
    return None


def _faulted_nodes(events: Sequence[Event], t_fault: float, window_end: float) -> set[str]:
    """The serving nodes the lab put into a fault mode during the window (they keep
    serving, badly: see aidrill.lab.serving._node_faults)."""
    return {
        str(e.data.get("node"))
        for e in events
        if e.kind == f"{GROUND_TRUTH_PREFIX}node_fault_set"
        and e.data.get("mode") not in (None, "none")
        and t_fault <= e.time <= window_end
    }


def _ground_truth_rto(
    events: Sequence[Event], t_fault: float | None, window_end: float | None
) -> float | None:
    """What the lab itself says: fault injected → serving capacity restored. None for a
    fault put into serving nodes: how long users' buckets stay unhealthy depends on the
    share of answers the node served, which the lab does not decide; its truth for
    those is the blind time (``_ground_truth_blind``)."""
    if t_fault is None or window_end is None or _faulted_nodes(events, t_fault, window_end):
        return None
    lost = [
        e.time
        for e in events
        if e.kind == f"{GROUND_TRUTH_PREFIX}serving_capacity_lost" and e.time >= t_fault
    ]
    if not lost:
        return None
    restored = [
        e.time
        for e in events
        if e.kind == f"{GROUND_TRUTH_PREFIX}serving_capacity_restored"
        and lost[0] < e.time <= window_end
    ]
    return restored[0] - t_fault if restored else None


def _ground_truth_blind(
    events: Sequence[Event], t_fault: float | None, window_end: float | None
) -> float | None:
    """What the lab says of a node fault: fault → its balancer took the first faulted
    node out of rotation; the window's length when it never did. None for other faults."""
    if t_fault is None or window_end is None:
        return None
    faulted = _faulted_nodes(events, t_fault, window_end)
    if not faulted:
        return None
    out = [
        e.time
        for e in events
        if e.kind in (f"{GROUND_TRUTH_PREFIX}node_unhealthy", f"{GROUND_TRUTH_PREFIX}node_removed")
        and str(e.data.get("node")) in faulted
        and t_fault <= e.time <= window_end
    ]
    return (min(out) if out else window_end) - t_fault


def _steady_state_start(events: Sequence[Event]) -> float | None:
    """Coverage starts with the steady-state check before the method."""
    return next(
        (
            e.time
            for e in sorted(events, key=lambda e: e.time)
            if e.kind == "phase" and e.data.get("phase") == "steady-state-before"
        ),
        None,
    )


def _first_time(events: Sequence[Event], kind: str) -> float | None:
    return next((e.time for e in sorted(events, key=lambda e: e.time) if e.kind == kind), None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
