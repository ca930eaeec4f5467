import random

from hypothesis import given
from hypothesis import strategies as st

from aidrill.measure import LatencyHistogram, merge_histograms


def test_quantiles_are_within_two_percent() -> None:
    values = [random.Random(7).uniform(0.001, 2.0) for _ in range(5000)]
    histogram = LatencyHistogram()
    for value in values:
        histogram.record(value)
    exact = sorted(values)[int(0.95 * len(values)) - 1]
    estimate = histogram.quantile(0.95)
    assert estimate is not None
    assert exact <= estimate <= exact * 1.021


def test_empty_histogram_has_no_quantile() -> None:
    assert LatencyHistogram().quantile(0.5) is None


@given(st.lists(st.floats(0, 60), max_size=200), st.lists(st.floats(0, 60), max_size=200))
def test_merging_equals_recording_everything_in_one(a: list[float], b: list[float]) -> None:
    left, right, whole = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for value in a:
        left.record(value)
        whole.record(value)
    for value in b:
        right.record(value)
        whole.record(value)
    merged = merge_histograms([left, right])
    assert merged.bins() == whole.bins()
    assert merged.quantile(0.99) == whole.quantile(0.99)
