"""A pause after a fault that ends once the recovery is proven (``hold-until-recovered``):
the rule it ends on, and the pause that asks it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aidrill.measure import Event, TierEvidence, recovered_since_last_fault
from aidrill.plan import load_plan
from aidrill.run._pauses import HeldPauses

from .test_measure_recovery import T0, series

PLAN = load_plan(Path(__file__).resolve().parents[1] / "drplan.yaml")
NO_TIERS = TierEvidence(regions=("lab-east", "lab-west"))


def _faults(*offsets: float) -> list[Event]:
    return [Event(T0 + o, "fault_injected", {"activity": f"fault-{o:g}"}) for o in offsets]


def _recovered(pattern: str, events: list[Event], now: float | None = None) -> bool:
    buckets = series(pattern)
    return recovered_since_last_fault(
        PLAN,
        ["inference"],
        events,
        buckets,
        4.0,
        NO_TIERS,
        now=T0 + len(pattern) if now is None else now,
    )


def test_it_ends_once_the_impact_is_followed_by_a_sustained_recovery() -> None:
    fault = _faults(3.2)
    assert not _recovered("hhh" + "xx" + "hhh", fault), "healthy for 3 s of 4"
    assert _recovered("hhh" + "xx" + "hhhh", fault)


def test_no_impact_yet_keeps_the_hold() -> None:
    # The impact may still come: a fault that shows nothing is watched for its pause.
    assert not _recovered("h" * 30, _faults(3.2))


def test_a_bucket_not_yet_closed_does_not_count() -> None:
    # The last healthy bucket ends at +9: at +8.5 it is still open.
    assert not _recovered("hhh" + "xx" + "hhhh", _faults(3.2), now=T0 + 8.5)


def test_it_judges_the_latest_fault_not_an_earlier_one() -> None:
    pattern = "hh" + "x" + "hhhh" + "h" + "xx" + "hhh"
    # Recovered from the first fault (at +2), not yet from the second (at +7.5).
    assert not _recovered(pattern, _faults(2.0, 7.5))
    assert _recovered(pattern + "h", _faults(2.0, 7.5))


def test_every_measured_component_must_have_recovered() -> None:
    # The feature store is judged on its probe samples: none recorded, so no proof.
    buckets = series("hhh" + "xx" + "hhhh")
    assert not recovered_since_last_fault(
        PLAN, ["inference", "feature-store"], _faults(3.2), buckets, 4.0, NO_TIERS, T0 + 9
    )


def test_no_fault_no_end() -> None:
    assert not _recovered("hhh" + "xx" + "hhhh", [])


def _pause(seconds: float) -> dict[str, object]:
    return {"name": "fault", "pauses": {"after": seconds}}


def test_the_pause_ends_when_asked_and_says_how_long_it_held() -> None:
    pauses, activity = HeldPauses(), _pause(30)
    pauses.take(activity)
    asked = []

    def done() -> bool:
        asked.append(time.monotonic())
        return len(asked) >= 2

    start = time.monotonic()
    held = pauses.sleep_after(activity, {}, {}, lambda: False, lambda _: None, done)
    assert held is not None and held == pytest.approx(time.monotonic() - start, abs=0.2)
    assert held < 5, "ended on the second look, not after 30 s"
    assert activity["pauses"] == {"after": 30}, "the journal keeps the pause as written"


def test_a_pause_never_done_is_slept_in_full() -> None:
    pauses, activity = HeldPauses(), _pause(1.2)
    pauses.take(activity)
    start = time.monotonic()
    held = pauses.sleep_after(activity, {}, {}, lambda: False, lambda _: None, lambda: False)
    assert held is None
    assert time.monotonic() - start >= 1.2


def test_an_interrupted_activity_skips_its_pause() -> None:
    pauses, activity = HeldPauses(), _pause(30)
    pauses.take(activity)
    start = time.monotonic()
    assert pauses.sleep_after(activity, {}, {}, lambda: True, lambda _: None, lambda: True) is None
    assert time.monotonic() - start < 1


def test_pauses_held_are_those_after_a_fault_was_injected(tmp_path: Path) -> None:
    """The pause after a step that restores what a fault took (the vector index restored
    from its snapshot) ends on the recovery too; one before any fault is slept as
    written, and without the option nothing is held."""
    import yaml

    from aidrill.run._session import DrillSession

    repo = Path(__file__).resolve().parents[1]
    experiment = yaml.safe_load((repo / "experiments/lab/vector-index-loss.yaml").read_text())
    for extension in experiment["extensions"]:
        if extension["name"] == "aidrill":
            extension["hold-until-recovered"] = True
    fault, restore = experiment["method"][:2]
    session = DrillSession(experiment, {}, run_dir=str(tmp_path / "run"),
                           plan=str(repo / "drplan.yaml"))  # fmt: skip
    session.side = None  # no target: this asks only which pauses are held
    try:
        session.enter_phase("method")
        assert session.hold_check(fault) is None, "no fault injected yet"
        session.activity_started(fault)
        session.activity_ended(fault, {"status": "succeeded"})
        assert session.hold_check(fault) is not None
        session.activity_started(restore)
        session.activity_ended(restore, {"status": "succeeded"})
        assert session.hold_check(restore) is not None
        session.enter_phase("rollbacks")
        assert session.hold_check(restore) is None, "rollbacks are never held"
        session.phase = "method"
        session.extension = session.extension.model_copy(update={"hold_until_recovered": False})
        assert session.hold_check(restore) is None
    finally:
        session.close()
