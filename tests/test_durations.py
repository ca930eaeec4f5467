import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aidrill._durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10),
        ("5m", 300),
        ("1h", 3600),
        ("1d", 86400),
        ("1.5s", 1.5),
        (30, 30.0),
    ],
)
def test_parse_duration_accepts_plan_notation(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "5", "-1s", "1w", "", "ms", True, None, [1]])
def test_parse_duration_rejects_anything_else(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10 * 86400))
def test_format_then_parse_round_trips_whole_seconds(seconds: int) -> None:
    text = format_duration(seconds)
    parts = re.findall(r"\d+(?:\.\d+)?[hms]", text)
    assert "".join(parts) == text
    assert sum(parse_duration(part) for part in parts) == seconds
