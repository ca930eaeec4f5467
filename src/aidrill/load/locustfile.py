"""aidrill's locustfile: golden-set inference requests and vector searches, all scored.

Inference requests speak the plan's protocol (``aidrill.load.protocols``: the lab's
``/predict``, the OpenAI-compatible API, the Open Inference Protocol, any JSON API) and
each answer is scored against its golden sample (``aidrill.load.scorers``); a streamed
answer also gives its time to first token, inter-token gaps and tokens per second.
Search answers are scored by recall@k against exact search over the held-out query set
(when the target has one).

Runs only inside Locust's own process (``python -m locust -f``), started by
:class:`aidrill.load.LoadGenerator`; settings arrive in ``AIDRILL_*`` variables.
``AIDRILL_LOAD_ROLE`` says which part it plays: ``local`` (one process, it writes the
timeline), ``worker`` (sends its buckets with each of Locust's worker reports) or
``master`` (merges the workers' buckets and writes the timeline).

Users are FastHttpUser (geventhttpclient): several times the requests per core of
HttpUser on the same machine, and every answer is still scored.
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import orjson
from locust import FastHttpUser, constant_throughput, events

from aidrill.load._aggregator import BucketAggregator
from aidrill.load._pgvector import PgVectorSearch
from aidrill.load._profile import SEARCH_RATE, SEARCH_USERS
from aidrill.load._stream import data_payloads
from aidrill.load.protocols import protocol_for
from aidrill.load.scorers import expectation, score
from aidrill.plan import ProtocolSettings

_GOLDEN = json.loads(Path(os.environ["AIDRILL_GOLDEN_SET"]).read_text())["samples"]
_RATE = float(os.environ.get("AIDRILL_RATE_PER_USER", "3"))
_TIMEOUT = float(os.environ.get("AIDRILL_REQUEST_TIMEOUT", "2"))
_BUCKET = float(os.environ.get("AIDRILL_BUCKET_SECONDS", "1"))
_ROLE = os.environ.get("AIDRILL_LOAD_ROLE", "local")
_TIMELINE = Path(os.environ["AIDRILL_TIMELINE"]) if _ROLE != "worker" else None
_READY = Path(os.environ.get("AIDRILL_READY_FILE", os.devnull))
# A worker reports every few seconds (Locust's WORKER_REPORT_INTERVAL): the master keeps
# a bucket open that much longer before writing it.
_REPORT_SLACK = 3.0 + 2.0 if _ROLE == "master" else 0.0
_HEADERS: dict[str, str] = json.loads(os.environ.get("AIDRILL_HTTP_HEADERS") or "{}")
_CA_BUNDLE = os.environ.get("AIDRILL_CA_BUNDLE")
_QUERIES_PATH = os.environ.get("AIDRILL_INDEX_QUERIES")
_QUERIES = json.loads(Path(_QUERIES_PATH).read_text()) if _QUERIES_PATH else None
# The plan's vector database (its connection string resolved), where searches go
# instead of the endpoint's POST /search.
_STORE = json.loads(os.environ.get("AIDRILL_VECTOR_STORE") or "null")
_SETTINGS = ProtocolSettings.model_validate_json(os.environ.get("AIDRILL_PROTOCOL") or "{}")
_PROTOCOL = protocol_for(_SETTINGS)
_REGION_HEADER, _NODE_HEADER = _SETTINGS.region_header, _SETTINGS.node_header
# Each sample's request body and scoring rule, made once: a request then costs no
# template rendering or JSON encoding.
_PREPARED = [(_PROTOCOL.body(sample).decode(), expectation(sample)) for sample in _GOLDEN]
_REQUEST_HEADERS = {"Content-Type": _PROTOCOL.content_type, "Accept-Encoding": "identity"}


def _infer(user: _GoldenUser) -> None:
    body, expect = user.samples[user.position % len(user.samples)]
    user.position += 1
    context = {"expect": expect, "series": "inference"}
    headers = _REQUEST_HEADERS
    if _PROTOCOL.signs:  # a signature per request (SageMaker's SigV4)
        url = (user.host or "").rstrip("/") + _PROTOCOL.path
        headers = {**headers, **_PROTOCOL.headers(url, body.encode())}
    if not _PROTOCOL.streams:
        user.client.request(
            "POST", _PROTOCOL.path, data=body, headers=headers, name="infer", context=context
        )
        return
    with user.client.request(
        "POST", _PROTOCOL.path, data=body, headers=headers, name="infer",
        context=context, stream=True, catch_response=True,
    ) as response:  # fmt: skip
        _read_stream(response)


def _read_stream(response: Any) -> None:
    """Read a streamed answer as it arrives: when its first token came, the gaps between
    tokens, how many tokens (the server's usage count where it sends one, else one per
    event) and the text, which the request listener scores. The answer's latency is the
    whole stream.

    The lines are taken as each socket read brings them, timed once per read
    (``aidrill.load._stream``), and parsed together once the stream ends
    (``benchmarks/stream_load.py``): a JSON parse per token would cost the load a
    third of its answers."""
    meta = response.request_meta
    context = meta["context"]  # Locust's own copy, which its listener receives
    if meta.get("exception") is not None:
        return  # refused or failed before the stream began: Locust reports it as is
    started = meta["start_time"]
    clock = time.time
    try:
        payloads, seen = data_payloads(response, clock, _PROTOCOL.unframer())
        events = _PROTOCOL.payload_events(payloads)
    except Exception as exc:  # a stream cut short or garbled is a failed answer
        response.failure(exc)
        return
    meta["response_time"] = (clock() - started) * 1000
    # Transposed, compressed and subtracted in C: this runs once per streamed answer.
    pieces, counts = zip(*events, strict=True) if events else ((), ())
    arrivals = list(itertools.compress(seen, pieces))  # the events that carried text
    context["answer"] = "".join(pieces)
    if arrivals:
        usage = max(counts)
        context["ttft"] = arrivals[0] - started
        context["gaps"] = list(map(operator.sub, arrivals[1:], arrivals))
        # The tokens after the first, over the time they took: the decode rate a user
        # reads at (the first token's wait is the TTFT).
        context["tokens"] = max(usage, len(arrivals)) - 1
        context["token_seconds"] = arrivals[-1] - arrivals[0]
    response.success()


def _search(user: _GoldenUser) -> None:
    assert _QUERIES is not None
    which = user.rng.randrange(len(_QUERIES["queries"]))
    if _STORE is not None:
        _search_store(user, which)
        return
    user.client.post(
        "/search",
        json={"vector": _QUERIES["queries"][which], "k": _QUERIES["k"]},
        name="search",
        context={"exact": _QUERIES["exact"][which], "series": "search"},
    )


def _search_store(user: _GoldenUser, which: int) -> None:
    """One query to the plan's vector database, reported as Locust reports an HTTP
    request (its listener scores the ids against the exact answers)."""
    assert _QUERIES is not None and _STORE is not None
    if user.store is None:
        user.store = PgVectorSearch(_STORE, _TIMEOUT)
    began, clock = time.time(), time.perf_counter()
    ids: list[Any] | None = None
    failed: BaseException | None = None
    try:
        ids = user.store.search(_QUERIES["queries"][which], _QUERIES["k"])
    except Exception as exc:
        failed = exc
    user.environment.events.request.fire(
        request_type="SQL", name="search", start_time=began,
        response_time=(time.perf_counter() - clock) * 1000, response_length=0,
        response=None, exception=failed,
        context={"exact": _QUERIES["exact"][which], "series": "search", "ids": ids},
    )  # fmt: skip


def _tls_context(cafile: str | None = None, **_: Any) -> Any:
    """TLS verified against the plan's CA bundle (or the system's), unless the plan
    turned verification off."""
    import gevent.ssl

    if _CA_BUNDLE == "insecure":
        context = gevent.ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = gevent.ssl.CERT_NONE
        return context
    return gevent.ssl.create_default_context(cafile=_CA_BUNDLE or cafile)


class _GoldenUser(FastHttpUser):
    """What both kinds of user share. Locust adds a class's tasks to those of the
    classes it derives from, so neither kind derives from the other: a search user
    that inherited the prediction task ran both at its search pace (7.6 searches/s
    instead of 20, and 38 predictions/s instead of 30)."""

    abstract = True
    network_timeout = _TIMEOUT
    connection_timeout = _TIMEOUT
    # The plan's headers (a token) on every request, and TLS verified as the probes do.
    default_headers = _HEADERS or None
    insecure = False
    ssl_context_factory = staticmethod(_tls_context)
    store: PgVectorSearch | None = None  # a search user's vector database, once asked

    def on_start(self) -> None:
        self.rng = random.Random(id(self))
        self.samples = self.rng.sample(_PREPARED, len(_PREPARED))
        self.position = 0


class InferenceUser(_GoldenUser):
    wait_time = constant_throughput(_RATE)
    tasks = [_infer]


class SearchUser(_GoldenUser):
    """Vector searches in users of their own, so a stalled prediction never holds a
    search back (and the search series keeps its own pace through an outage)."""

    abstract = not _QUERIES  # without held-out queries, no search users at all
    fixed_count = SEARCH_USERS
    wait_time = constant_throughput(SEARCH_RATE)
    tasks = [_search]

    def on_stop(self) -> None:
        if self.store is not None:
            self.store.close()


def _on_request(
    add: Callable[..., None],
    add_stream: Callable[..., None],
    response_time: float,
    start_time: float | None = None,
    response: Any = None,
    context: dict[str, Any] | None = None,
    exception: BaseException | None = None,
    # Locust's other fields, named so that they are not collected into a dict of their
    # own on every answer; ** keeps any field a later Locust adds harmless.
    request_type: str | None = None,
    name: str | None = None,
    url: str | None = None,
    response_length: int | None = None,
    **_: Any,
) -> None:
    """Score one answer and add it to its bucket: 1/0 for an inference answer against its
    golden sample, recall@k for a search against exact search.

    Runs once per answer, inside the load's own CPU budget (benchmarks/load_scale.py
    measures it): one function, plain operations, no per-answer allocations it can avoid.
    """
    seconds = response_time / 1000
    began = start_time if start_time is not None else time.time() - seconds
    context = context or _NO_CONTEXT
    series = context.get("series", "inference")
    if exception is not None or (response is None and context.get("ids") is None):
        add(began, seconds, exception is None, None, None, series)
        return
    quality: float
    try:
        if series == "search":
            # A vector database's ids come in the context; the lab's index answers JSON.
            # JSON is UTF-8: parse the bytes (FastResponse.json() would first guess the
            # text's charset, which costs more than the rest of the listener), with orjson.
            ids = context.get("ids")
            if ids is None:
                ids = orjson.loads(response.content)["ids"]
            exact = set(context["exact"])
            quality = len(exact.intersection(ids)) / len(exact)
        else:
            answer = context["answer"] if "answer" in context else _PROTOCOL.read(response.content)
            quality = score(context.get("expect") or _NO_CONTEXT, answer)
    except (ValueError, KeyError, TypeError, IndexError, ZeroDivisionError):  # incl. orjson's
        quality = 0.0
    headers = response.headers if response is not None else _NO_CONTEXT
    region = headers.get(_REGION_HEADER)
    node = headers.get(_NODE_HEADER)
    age = headers.get(_AGE_HEADER.get(series, ""))
    # A header sent twice reads as a list: its last value counts.
    if region is not None and not isinstance(region, str):
        region = region[-1] if region else None
    if node is not None and not isinstance(node, str):
        node = node[-1] if node else None
    if age is not None:
        try:
            age = float(age if isinstance(age, str) else age[-1])
        except (ValueError, IndexError):
            age = None
    add(began, seconds, True, quality, region, series, age, node)
    if "ttft" in context:
        add_stream(began, series, context["ttft"], context["gaps"], context["tokens"],
                  context["token_seconds"])  # fmt: skip


_NO_CONTEXT: dict[str, Any] = {}
_AGE_HEADER = {"inference": "X-Aidrill-Feature-Age", "search": "X-Aidrill-Index-Age"}


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_: Any) -> None:
    aggregator = BucketAggregator(_TIMELINE, _BUCKET, grace=_TIMEOUT + 0.5 + _REPORT_SLACK)
    # benchmarks/load_scale.py measures the listener's cost by leaving it out; a drill
    # never sets this.
    if not os.environ.get("AIDRILL_BENCH_NO_LISTENER"):
        environment.events.request.add_listener(
            functools.partial(_on_request, aggregator.add, aggregator.add_stream)
        )
    if _ROLE == "worker":
        environment.events.report_to_master.add_listener(
            lambda data, **_: data.__setitem__("aidrill_buckets", aggregator.drain())
        )
    if _ROLE == "master":
        environment.events.worker_report.add_listener(
            lambda data, **_: aggregator.merge(data.get("aidrill_buckets") or [])
        )

    def flush_forever() -> None:
        while True:
            gevent.sleep(_BUCKET / 2)
            aggregator.flush(time.time())

    flusher = gevent.spawn(flush_forever)
    if _ROLE == "master":
        gevent.spawn(_count_workers, environment)
    parent = os.getppid()

    def quit_when_orphaned() -> None:
        # A killed `aidrill run` must not leave load running against the target.
        while os.getppid() == parent:
            gevent.sleep(0.5)
        if environment.runner is not None:
            environment.runner.quit()

    gevent.spawn(quit_when_orphaned)

    def on_test_start(**_: Any) -> None:
        _READY.write_text(str(time.time()))

    def on_quitting(**_: Any) -> None:
        if aggregator.closed:
            return
        if _ROLE == "master":
            _collect_final_reports(environment)
        flusher.kill()
        aggregator.flush(time.time(), final=True)
        aggregator.close()

    environment.events.test_start.add_listener(on_test_start)
    environment.events.quitting.add_listener(on_quitting)


def _count_workers(environment: Any) -> None:
    """Every second, how many workers Locust's master hears from and how many it lost
    the heartbeat of, for the run that watches its apparatus (``load-workers.jsonl``)."""
    path = os.environ.get("AIDRILL_WORKERS_FILE")
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as log:
        while True:
            gevent.sleep(1.0)
            runner = environment.runner
            clients = getattr(runner, "clients", None)
            if clients is None:
                continue
            record = {"time": round(time.time(), 3), "ready": runner.worker_count,
                      "missing": len(clients.missing)}  # fmt: skip
            log.write(json.dumps(record) + "\n")
            log.flush()


def _collect_final_reports(environment: Any, timeout: float = 10.0) -> None:
    """Locust fires ``quitting`` on the master before it tells its workers to quit, so
    their last reports (the last seconds of buckets) would come too late. Tell them now
    and wait until each has quit, which it does right after sending its final report."""
    from locust.rpc import Message

    runner = environment.runner
    clients = getattr(runner, "clients", None)
    if clients is None:
        return
    for client in list(clients.all):
        runner.server.send_to_client(Message("quit", None, client.id))  # type: ignore[no-untyped-call]
    deadline = time.monotonic() + timeout
    while _still_reporting(clients) and time.monotonic() < deadline:
        gevent.sleep(0.05)


def _still_reporting(clients: Any) -> bool:
    """Whether a worker that can still send its final report has not quit yet. One whose
    heartbeat was lost never answers: waiting for it held every stop 10 s."""
    missing = {client.id for client in clients.missing}
    return any(client.id not in missing for client in clients.all)
