"""An action's arguments as people write them: each typed read takes what a person
would mean and refuses the rest, naming the action and the argument."""

from __future__ import annotations

import pytest

from aidrill._arguments import Arguments
from aidrill.errors import ExperimentError

GIVEN = Arguments(
    {"count": "3", "share": "12.5", "zone": 1, "ids": "i-1", "names": ["a", "b"],
     "off": "false", "on": "yes", "filters": [{"Name": "tag:team"}], "word": "two",
     "flag": True, "empty": ""},
    action="action 'kill'",
)  # fmt: skip


def test_reads_take_what_a_person_means() -> None:
    assert GIVEN.whole("count") == 3
    assert GIVEN.number("share") == 12.5
    assert GIVEN.text("zone") == "1"
    assert GIVEN.texts("ids") == ["i-1"] and GIVEN.texts("names") == ["a", "b"]
    assert GIVEN.flag("on") and not GIVEN.flag("off") and not GIVEN.flag("missing")
    assert GIVEN.objects("filters") == [{"Name": "tag:team"}]
    assert GIVEN.whole("missing", 1) == 1 and GIVEN.text("empty", "d") == "d"
    assert dict(GIVEN)["count"] == "3"  # the mapping is what was given


@pytest.mark.parametrize(
    ("read", "name", "wanted"),
    [
        (Arguments.whole, "word", "a whole number"),
        (Arguments.whole, "share", "a whole number"),
        (Arguments.number, "word", "a number"),
        (Arguments.text, "flag", "a string"),
        (Arguments.texts, "filters", "a list of strings"),
        (Arguments.objects, "names", "a list of objects"),
    ],
)
def test_a_value_of_another_type_names_the_action_and_the_argument(
    read: object, name: str, wanted: str
) -> None:
    with pytest.raises(
        ExperimentError, match=rf"action 'kill': argument '{name}' must be {wanted}"
    ):
        read(GIVEN, name)  # type: ignore[operator]
