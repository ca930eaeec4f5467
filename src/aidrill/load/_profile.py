"""What the load sends: the profile of a run, and how many answers a bucket should hold.

Shared by the adapter (this process) and the locustfile (Locust's process), so the
two never disagree on the search users' pace.
"""

from __future__ import annotations

from dataclasses import dataclass

SEARCH_USERS = 2
# Searches per second per search user: enough that one poor answer in a 1 s bucket does
# not by itself take the bucket below a quality floor of 0.8.
SEARCH_RATE = 10.0


@dataclass(frozen=True)
class LoadProfile:
    users: int = 10
    rate_per_user: float = 3.0
    request_timeout: float = 2.0
    bucket: float = 1.0
    workers: int = 0  # 0: one Locust process; N: Locust's master and N workers


def expected_answers(
    users: int, rate_per_user: float, bucket: float, search: bool
) -> dict[str, float]:
    """Answers per bucket the load sends when every answer comes at once, per series."""
    expected = {"inference": users * rate_per_user * bucket}
    if search:
        expected["search"] = SEARCH_USERS * SEARCH_RATE * bucket
    return expected


def min_answers(expected: dict[str, float], declared: int | None = None) -> dict[str, int]:
    """The coverage rule's floor per series: the plan's ``slo.min_answers`` for the
    inference series where it sets one, else a third of what the load sends (a bucket
    that holds less than that is unknown: the load was not there to see it)."""
    floors = {series: max(1, int(count // 3)) for series, count in expected.items()}
    if declared is not None:
        floors["inference"] = declared
    return floors
