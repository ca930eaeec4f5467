"""Load: Locust in its own process, aggregating results per time bucket."""

from aidrill.load._generator import LoadGenerator
from aidrill.load._profile import LoadProfile, expected_answers, min_answers

__all__ = ["LoadGenerator", "LoadProfile", "expected_answers", "min_answers"]
