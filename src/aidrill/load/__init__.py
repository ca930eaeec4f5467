"""Load: Locust in its own process, aggregating results per time bucket."""

from aidrill.load._generator import LoadGenerator, LoadProfile

__all__ = ["LoadGenerator", "LoadProfile"]
