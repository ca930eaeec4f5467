"""Python's cyclic garbage collector, held back while a quarter's report is built.

A 400-run quarter makes millions of short-lived objects (a run's 3,600 timeline buckets,
WeasyPrint's layout boxes) that reference counting frees as soon as they are done with.
At its default thresholds the cyclic collector runs every 700 allocations and walks
the young objects each time, and every few rounds the whole heap: measured on the
400-run benchmark, about 40 % of measuring a run again and of laying out the PDF went
to it (benchmarks/README.md, "Quarterly report"). While the report is built, the
objects alive before it are moved out of the collector's sight (``gc.freeze``) and a
collection runs every ``_ALLOCATIONS`` allocations; both are put back afterwards.
Nothing is kept alive longer than until the next, rarer collection.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_ALLOCATIONS = 100_000


@contextlib.contextmanager
def rare_collections() -> Iterator[None]:
    """Collect cycles rarely inside the block (process pools forked in it inherit it)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_ALLOCATIONS, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
