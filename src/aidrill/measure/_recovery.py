"""Healthy buckets, recovery instants and RTO: DESIGN.md "Measurement", as pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aidrill.measure._coverage import Gap, find_gaps, first_disqualifying
from aidrill.measure._records import Bucket

# Two buckets are contiguous when the gap between them is under this share of a bucket.
_CONTIGUITY_SLACK = 0.05


BucketState = Literal["healthy", "unhealthy", "unknown"]


@dataclass(frozen=True)
class HealthRule:
    """Thresholds a bucket must meet to count as healthy (the plan's SLO), and the
    evidence it must hold: ``min_answers``, and the ``grace`` an unknown stretch may
    outlast one bucket by before it is a gap."""

    min_success_ratio: float
    max_p95: float
    min_quality: float
    min_answers: int = 1
    grace: float = 1.0
    # Streamed generation, where the plan's SLO sets them (None: not judged).
    max_ttft_p95: float | None = None
    max_itl_p95: float | None = None
    min_tokens_per_second: float | None = None

    def streaming_broken(self, bucket: Bucket) -> bool:
        """Whether the bucket's streamed answers break a streaming bound the SLO sets.
        A bucket with no streamed answer is judged by the other thresholds alone."""
        tps = bucket.tokens_per_second
        return (
            (self.max_ttft_p95 is not None and (bucket.ttft_p95 or 0.0) > self.max_ttft_p95)
            or (self.max_itl_p95 is not None and (bucket.itl_p95 or 0.0) > self.max_itl_p95)
            or (
                self.min_tokens_per_second is not None
                and tps is not None
                and tps < self.min_tokens_per_second
            )
        )


def bucket_state(bucket: Bucket, rule: HealthRule) -> BucketState:
    """*unhealthy* when the answers it holds break the SLO (success ratio, p95, quality,
    and for streamed answers the time to first token, inter-token latency and tokens
    per second where the SLO bounds them: a failure is evidence however few answers
    came); *unknown* when it holds fewer than
    ``min_answers`` otherwise (too little evidence to call it healthy); else *healthy*."""
    success = bucket.success_ratio
    if success is None:
        return "unknown"
    quality = bucket.quality
    if (
        success < rule.min_success_ratio
        or bucket.p95 is None
        or bucket.p95 > rule.max_p95
        or quality is None
        or quality < rule.min_quality
        or rule.streaming_broken(bucket)
    ):
        return "unhealthy"
    return "unknown" if bucket.requests < rule.min_answers else "healthy"


def is_healthy(bucket: Bucket, rule: HealthRule) -> bool:
    """Success ratio ≥ SLO, p95 ≤ SLO and quality ≥ floor, on at least ``min_answers``
    answers; an empty or sparse bucket proves nothing."""
    return bucket_state(bucket, rule) == "healthy"


@dataclass(frozen=True)
class Relapse:
    """A stretch of unhealthy buckets after the sustained recovery, in UTC epoch seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class RecoveryMeasurement:
    """What the series showed after a fault, in UTC epoch seconds."""

    t_fault: float
    window_end: float
    sustain: float
    t_first_unhealthy: float | None
    t_first_success: float | None
    t_recovered: float | None
    t_detected: float | None = None  # the end of the first unhealthy bucket
    resolution: float = 1.0  # bucket width: the precision of every instant here
    # Unknown stretches longer than a bucket plus the grace, from the start of coverage
    # (the steady-state check) to the end of the window.
    gaps: tuple[Gap, ...] = ()
    # Unhealthy stretches after the sustained recovery, inside the window: the RTO counts
    # the first recovery, and these say the service fell over again after it.
    relapses: tuple[Relapse, ...] = ()
    # Not recovered: no recovery began before this instant (the end of the last
    # unhealthy bucket inside the window), whenever one comes.
    ruled_out_until: float | None = None

    @property
    def uncovered(self) -> Gap | None:
        """The first gap the verdict needed evidence from: any gap, unless the recovery
        had already held for its sustain before the gap began. No impact needs the whole
        window covered."""
        proven = None if self.t_recovered is None or not self.impact else self.t_recovered
        return first_disqualifying(self.gaps, None if proven is None else proven + self.sustain)

    @property
    def impact(self) -> bool:
        return self.t_first_unhealthy is not None

    @property
    def recovered(self) -> bool:
        return self.t_recovered is not None

    @property
    def rto(self) -> float | None:
        """Achieved RTO in seconds, 0 without impact, None when not recovered."""
        if self.t_recovered is None:
            return None
        return max(0.0, self.t_recovered - self.t_fault)

    @property
    def detection_delay(self) -> float | None:
        """From the fault to the moment the evidence showed the impact: the end of the
        first unhealthy bucket (a bucket is known once it closes)."""
        if self.t_detected is None:
            return None
        return max(0.0, self.t_detected - self.t_fault)

    @property
    def window(self) -> float:
        return max(0.0, self.window_end - self.t_fault)

    @property
    def provable_until(self) -> float:
        """The latest RTO this window could confirm: a recovery must hold for
        ``sustain`` inside the window to count."""
        return max(0.0, self.window - self.sustain)

    @property
    def ruled_out(self) -> float | None:
        """Not recovered: the RTO the evidence already rules out, from the fault (the
        window's last unhealthy bucket ends there, with no sustained recovery before)."""
        if self.ruled_out_until is None:
            return None
        return max(0.0, self.ruled_out_until - self.t_fault)


def measure_recovery(
    buckets: Sequence[Bucket],
    t_fault: float,
    window_end: float,
    rule: HealthRule,
    sustain: float,
    covered_from: float | None = None,
) -> RecoveryMeasurement:
    """Find the first unhealthy bucket after ``t_fault`` and the sustained recovery after it.

    ``t_recovered`` is the start of the first run of contiguous healthy buckets lasting
    ``sustain`` that ends inside the observation window; without any unhealthy bucket
    the fault had no user-visible impact and RTO is 0. Unknown buckets (too few answers)
    are neither: they start no impact and break a healthy run. The series' gaps are
    found from ``covered_from`` (default: the fault) to the end of the window.
    """
    observed = sorted(
        (b for b in buckets if b.end > t_fault and b.start < window_end), key=lambda b: b.start
    )
    states = [bucket_state(b, rule) for b in observed]
    first_bad = next((i for i, state in enumerate(states) if state == "unhealthy"), None)
    resolution = observed[0].width if observed else _width(buckets)
    start = t_fault if covered_from is None else min(covered_from, t_fault)
    known = (
        (b.start, b.end)
        for b in buckets
        if b.end > start and b.start < window_end and bucket_state(b, rule) != "unknown"
    )
    gaps = tuple(find_gaps(known, start, window_end, resolution + rule.grace))
    if first_bad is None:
        return RecoveryMeasurement(
            t_fault, window_end, sustain, None, None, t_fault, resolution=resolution, gaps=gaps
        )
    after = observed[first_bad:]
    first_success = next((b.start for b in after if is_healthy(b, rule)), None)
    t_recovered = _start_of_sustained_run(after, rule, sustain, window_end)
    return RecoveryMeasurement(
        t_fault=t_fault,
        window_end=window_end,
        sustain=sustain,
        t_first_unhealthy=max(t_fault, observed[first_bad].start),
        t_first_success=first_success,
        t_recovered=t_recovered,
        t_detected=observed[first_bad].end,
        resolution=resolution,
        gaps=gaps,
        relapses=() if t_recovered is None else _unhealthy_stretches(after, rule, t_recovered),
        ruled_out_until=(
            _recovery_ruled_out_until(after, rule, window_end) if t_recovered is None else None
        ),
    )


def _recovery_ruled_out_until(
    buckets: Sequence[Bucket], rule: HealthRule, window_end: float
) -> float:
    """``buckets`` start with the first unhealthy one, and no recovery followed inside
    the window: the end of the last unhealthy bucket wholly inside it. A recovery is
    the start of a healthy run lasting the sustain; none began before that bucket (it
    would have ended inside the window, or run through the bucket), so whenever one
    comes, it starts after (and never before the first unhealthy bucket's end). An
    unknown bucket or the window's end proves nothing."""
    unhealthy = (
        b.end
        for b in buckets[1:]
        if b.end <= window_end + 1e-9 and bucket_state(b, rule) == "unhealthy"
    )
    return max(unhealthy, default=buckets[0].end)


def _unhealthy_stretches(
    buckets: Sequence[Bucket], rule: HealthRule, since: float
) -> tuple[Relapse, ...]:
    """Runs of unhealthy buckets starting at or after ``since``; a healthy or unknown
    bucket, or a hole in the series, ends a run."""
    stretches: list[Relapse] = []
    start: float | None = None
    end = 0.0
    for bucket in buckets:
        if bucket.start < since - 1e-9:
            continue
        unhealthy = bucket_state(bucket, rule) == "unhealthy"
        contiguous = start is not None and bucket.start - end <= _CONTIGUITY_SLACK * bucket.width
        if start is not None and not (unhealthy and contiguous):
            stretches.append(Relapse(start, end))
            start = None
        if unhealthy:
            if start is None:
                start = bucket.start
            end = bucket.end
    if start is not None:
        stretches.append(Relapse(start, end))
    return tuple(stretches)


def _width(buckets: Sequence[Bucket]) -> float:
    return buckets[0].width if buckets else 1.0


def _start_of_sustained_run(
    buckets: Sequence[Bucket], rule: HealthRule, sustain: float, window_end: float
) -> float | None:
    run_start: float | None = None
    previous_end: float | None = None
    for bucket in buckets:
        if bucket.end > window_end + 1e-9:
            break
        contiguous = previous_end is not None and (
            bucket.start - previous_end <= _CONTIGUITY_SLACK * bucket.width
        )
        if not is_healthy(bucket, rule):
            run_start = None
        elif run_start is None or not contiguous:
            run_start = bucket.start
        previous_end = bucket.end
        if run_start is not None and bucket.end - run_start >= sustain - 1e-9:
            return run_start
    return None
