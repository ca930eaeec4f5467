"""The Locust adapter, live against the lab, and the pure bucket aggregator."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from aidrill import _evidence as evidence
from aidrill.lab import LabClient
from aidrill.load import LoadGenerator, LoadProfile
from aidrill.load._aggregator import BucketAggregator
from aidrill.measure import Bucket


def test_aggregator_buckets_by_start_time_and_scores_quality(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    aggregator = BucketAggregator(path, width=1.0, grace=2.0)
    aggregator.add(100.2, 0.1, True, True, "a", node="a-1")
    aggregator.add(100.9, 0.3, True, False, "a", node="a-2")
    aggregator.add(101.1, 0.2, False, None, None)
    assert aggregator.flush(now=102.5) == 0, "bucket 100 is open until 100 + 1 + grace"
    assert aggregator.flush(now=103.0) == 1
    aggregator.flush(now=103.0, final=True)
    aggregator.close()
    first, second = (Bucket.from_record(json.loads(line)) for line in path.read_text().splitlines())
    assert (first.start, first.requests, first.failures, first.quality) == (100.0, 2, 0, 0.5)
    assert first.regions == {"a": 2}
    assert first.nodes == {"a-1": 1, "a-2": 1}, "who served each answer, where it says"
    assert second.failures == 1 and second.scored == 0
    assert second.nodes == {} and "nodes" not in second.to_record()


def test_an_answer_counted_after_its_bucket_closed_is_merged_when_read(tmp_path: Path) -> None:
    """A starved machine can deliver an answer after its bucket was written: the file
    then holds that bucket twice, and the one reader merges them (counts exactly,
    latency quantiles as an upper bound), so no second bucket with that start exists."""
    aggregator = BucketAggregator(tmp_path / evidence.TIMELINE_FILE, width=1.0, grace=2.0)
    for i in range(19):
        aggregator.add(100.0 + i / 20, 0.1, True, 1.0, "a", node=f"a-{i % 2}")
    assert aggregator.flush(now=103.5) == 1
    aggregator.add(100.5, 1.9, False, None, "b")  # the late one
    aggregator.add(100.6, 0.1, True, None, "b", node="b-0")  # and one more, late too
    aggregator.add(101.5, 0.2, True, 1.0, "a")
    aggregator.flush(now=105.0, final=True)
    aggregator.close()
    lines = (tmp_path / evidence.TIMELINE_FILE).read_text().splitlines()
    on_time, late, _ = (json.loads(line) for line in lines)
    assert on_time["start"] == late["start"] == 100.0
    first, second = evidence.read_timeline(tmp_path)
    assert (first.start, first.requests, first.failures, first.scored) == (100.0, 21, 1, 19)
    assert first.regions == {"a": 19, "b": 2}
    assert first.nodes == {"a-0": 10, "a-1": 9, "b-0": 1}
    assert first.max == first.p99 == late["max"], "the late answer is the slowest"
    assert first.p50 == first.p95 == on_time["p95"], "20 of 21 answers took 0.1 s"
    assert (second.start, second.requests) == (101.0, 1)


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
    # Every answer says how old its features were: refreshed every few seconds here.
    assert all(b.max_age is not None and 0 <= b.max_age < 30 for b in full), full


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


def _samples(count: int, seed: int = 7) -> list[tuple[Any, ...]]:
    import random

    rng = random.Random(seed)
    return [
        (
            1000 + rng.uniform(0, 3),  # 100 ms buckets: 30 of them
            rng.lognormvariate(-3, 1),
            rng.random() > 0.1,
            rng.choice([1.0, 0.0, None]),
            rng.choice(["east", "west"]),
            "inference",
            None,
            rng.choice(["east-1", "east-2", "west-1", None]),
        )
        for _ in range(count)
    ]


def _through_workers(samples: list, workers: int, path: Path) -> list[Bucket]:  # type: ignore[type-arg]
    """Split the samples over ``workers`` aggregators that report to a master in several
    rounds (as Locust's worker reports do), then read what the master wrote."""
    master = BucketAggregator(path, width=0.1, grace=0.0)
    locals_ = [BucketAggregator(None, width=0.1, grace=0.0) for _ in range(workers)]
    for number, sample in enumerate(samples):
        locals_[number % workers].add(*sample)
        if number % 97 == 0:  # a report mid-way: partials of still-open buckets
            master.merge(locals_[number % workers].drain())
    for worker in locals_:
        master.merge(worker.drain())
    master.flush(0, final=True)
    master.close()
    return [Bucket.from_record(json.loads(line)) for line in path.read_text().splitlines()]


def test_the_oldest_data_behind_a_bucket_survives_the_merge(tmp_path: Path) -> None:
    master = BucketAggregator(tmp_path / "t.jsonl", width=1.0, grace=0.0)
    workers = [BucketAggregator(None, width=1.0, grace=0.0) for _ in range(2)]
    workers[0].add(10.1, 0.1, True, 1.0, "a", age=3.5)
    workers[1].add(10.2, 0.1, True, 1.0, "a", age=7.25)
    workers[1].add(10.3, 0.1, True, 1.0, "a")
    for worker in workers:
        master.merge(worker.drain())
    master.flush(0, final=True)
    master.close()
    (line,) = (tmp_path / "t.jsonl").read_text().splitlines()
    assert Bucket.from_record(json.loads(line)).max_age == 7.25


def test_merging_worker_buckets_is_exact(tmp_path: Path) -> None:
    samples = _samples(5000)
    one = _through_workers(samples, 1, tmp_path / "one.jsonl")
    four = _through_workers(samples, 4, tmp_path / "four.jsonl")
    assert len(one) == 30
    assert sum(b.requests for b in one) == len(samples), "results waiting for a batch count too"
    key = lambda b: (b.start, b.requests, b.failures, b.scored, b.p50, b.p95, b.p99, b.max,  # noqa: E731
                     b.regions, b.nodes, round(b.correct, 9))  # fmt: skip
    assert [key(b) for b in one] == [key(b) for b in four]
    direct = BucketAggregator(tmp_path / "direct.jsonl", width=0.1, grace=0.0)
    for sample in samples:
        direct.add(*sample)
    direct.flush(0, final=True)
    direct.close()
    lines = (tmp_path / "direct.jsonl").read_text().splitlines()
    assert [key(Bucket.from_record(json.loads(line))) for line in lines] == [key(b) for b in one]
    master = BucketAggregator(None, width=0.1, grace=0.0)
    master.merge([{"series": "inference", "index": "x"}, {"nonsense": True}])
    assert master.drain() == [], "a malformed partial is dropped whole"


def test_distributed_load_merges_two_workers_into_one_timeline(
    tmp_path: Path, lab: LabClient
) -> None:
    """Locust's own --master/--worker, real processes: the master's timeline holds every
    worker's requests, scored, and every process stops."""
    generator = LoadGenerator(
        lab.info.router_url,
        lab.info.golden_set,
        tmp_path,
        LoadProfile(users=6, rate_per_user=4, workers=2),
        max_duration=60,
    )
    generator.start()
    workers = list(generator._workers)
    try:
        time.sleep(8)
        assert generator.running and all(w.poll() is None for w in workers)
    finally:
        generator.stop()
    assert not generator.running and all(w.poll() is not None for w in workers)
    buckets = [
        Bucket.from_record(json.loads(line))
        for line in (tmp_path / "timeline.jsonl").read_text().splitlines()
    ]
    full = [b for b in buckets[1:-1] if b.series == "inference"]
    assert len(full) >= 5, [(b.start, b.requests, b.series) for b in buckets]
    counts = sorted(b.requests for b in full)
    assert counts[len(counts) // 2] >= 18, ("both workers' users are counted", counts)
    assert all(b.failures == 0 and b.serving_region == "lab-east" for b in full)
    # Each answer names the node that served it (the lab's node header, passed on by
    # the region's balancer and the router), counted across both workers.
    assert all(sum(b.nodes.values()) == b.requests for b in full), [b.nodes for b in full]
    east = next(r for r in lab.balancers() if r["name"] == "lab-east")
    assert {n for b in full for n in b.nodes} <= {n["name"] for n in east["nodes"]}, full
    quality = sum(b.correct for b in full) / sum(b.scored for b in full)
    assert 0.85 <= quality <= 1.0
