"""The Locust adapter, live against the lab, and the pure bucket aggregator."""

from __future__ import annotations

import json
import time
from pathlib import Path

from aidrill.lab import LabClient
from aidrill.load import LoadGenerator, LoadProfile
from aidrill.load._aggregator import BucketAggregator
from aidrill.measure import Bucket


def test_aggregator_buckets_by_start_time_and_scores_quality(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    aggregator = BucketAggregator(path, width=1.0, grace=2.0)
    aggregator.add(100.2, 0.1, True, True, "a")
    aggregator.add(100.9, 0.3, True, False, "a")
    aggregator.add(101.1, 0.2, False, None, None)
    assert aggregator.flush(now=102.5) == 0, "bucket 100 is open until 100 + 1 + grace"
    assert aggregator.flush(now=103.0) == 1
    aggregator.flush(now=103.0, final=True)
    aggregator.close()
    first, second = (Bucket.from_record(json.loads(line)) for line in path.read_text().splitlines())
    assert (first.start, first.requests, first.failures, first.quality) == (100.0, 2, 0, 0.5)
    assert first.regions == {"a": 2}
    assert second.failures == 1 and second.scored == 0


def test_load_generator_streams_scored_buckets_and_stops(tmp_path: Path, lab: LabClient) -> None:
    generator = LoadGenerator(
        lab.info.router_url,
        lab.info.golden_set,
        tmp_path,
        LoadProfile(users=5, rate_per_user=4),
        max_duration=60,
    )
    generator.start()
    try:
        time.sleep(5)
        assert generator.running
    finally:
        generator.stop()
    assert not generator.running
    buckets = [
        Bucket.from_record(json.loads(line))
        for line in (tmp_path / "timeline.jsonl").read_text().splitlines()
    ]
    assert len(buckets) >= 4
    full = [b for b in buckets[1:-1]]
    assert all(b.requests >= 10 for b in full)
    assert all(b.failures == 0 for b in full)
    assert all(b.serving_region == "lab-east" for b in full)
    quality = sum(b.correct for b in buckets) / sum(b.scored for b in buckets)
    assert 0.85 <= quality <= 1.0, "the golden set is answered by a real trained model"


def test_load_generator_is_bounded_by_its_maximum_duration(tmp_path: Path, lab: LabClient) -> None:
    generator = LoadGenerator(
        lab.info.router_url,
        lab.info.golden_set,
        tmp_path,
        LoadProfile(users=2, rate_per_user=2),
        max_duration=2,
    )
    generator.start()
    deadline = time.monotonic() + 20
    while generator.running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not generator.running, "Locust stops by itself at its run time"
    generator.stop()
