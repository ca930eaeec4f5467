"""The search series against a real vector database: PostgreSQL 16 with pgvector over
loopback (``tests/_postgres.py``), named in the plan as ``vector-store`` (issue 27,
item 3). The load's search users ask it as a team's retrieval would; recall@k is
scored against exact answers computed here with numpy, so the database, not aidrill,
decides what the load measures; losing documents lowers it and losing the database
fails the searches, while inference goes on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from aidrill import _evidence as evidence
from aidrill.errors import InputError
from aidrill.load import LoadGenerator, LoadProfile
from aidrill.measure import Bucket
from aidrill.plan import ProtocolSettings, VectorStoreSettings
from aidrill.targets._endpoints import vector_store_settings
from aidrill.targets.endpoint import estate_of
from tests._model_servers import chat_golden_set, model_server
from tests._postgres import Postgres, postgres

DIMENSIONS, DOCUMENTS, QUERIES, K = 8, 400, 40, 5


@pytest.fixture(scope="module")
def database() -> Iterator[Postgres]:
    with postgres() as server:
        yield server


def _corpus(server: Postgres, tmp_path: Path) -> Path:
    """A table of documents (ids 1000 up, so no id is its row's position) and held-out
    queries with their exact nearest ids by Euclidean distance, computed with numpy."""
    import psycopg

    rng = np.random.default_rng(27)
    vectors = rng.normal(size=(DOCUMENTS, DIMENSIONS)).astype(np.float32)
    ids = np.arange(1000, 1000 + DOCUMENTS)
    queries = rng.normal(size=(QUERIES, DIMENSIONS)).astype(np.float32)
    distances = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=2)
    exact = ids[np.argsort(distances, axis=1)[:, :K]]
    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
        connection.execute("DROP TABLE IF EXISTS rag.passages")
        connection.execute("CREATE SCHEMA IF NOT EXISTS rag")
        connection.execute(f"CREATE TABLE rag.passages (doc_id int PRIMARY KEY, "
                           f"body text, emb vector({DIMENSIONS}))")  # fmt: skip
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO rag.passages VALUES (%s, %s, %s::vector)",
                [(int(i), f"passage {i}", "[" + ",".join(map(str, v.tolist())) + "]")
                 for i, v in zip(ids, vectors, strict=True)],
            )  # fmt: skip
    path = tmp_path / "queries.json"
    path.write_text(json.dumps({"k": K, "queries": queries.tolist(), "exact": exact.tolist()}))
    return path


def _store(server: Postgres) -> dict[str, Any]:
    declared = {
        "kind": "pgvector",
        "dsn": {"type": "env", "key": "RAG_DSN"},
        "table": "rag.passages",
        "id-column": "doc_id",
        "embedding-column": "emb",
    }
    settings = VectorStoreSettings.model_validate(declared)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("RAG_DSN", raising=False)
        with pytest.raises(InputError, match="RAG_DSN is not set"):
            vector_store_settings(settings)
        env.setenv("RAG_DSN", server.dsn)
        resolved = vector_store_settings(settings)
    assert resolved is not None and resolved["dsn"] == server.dsn
    return resolved


def _searches(run_dir: Path, since: float, until: float) -> list[Bucket]:
    return [b for b in evidence.read_timeline(run_dir, "search") if since <= b.start < until]


def _wait_for(run_dir: Path, series: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(b.requests for b in evidence.read_timeline(run_dir, series)) >= count:
            return
        time.sleep(0.25)


def test_the_search_series_asks_pgvector_and_scores_recall_against_exact_answers(
    database: Postgres, tmp_path: Path
) -> None:
    import psycopg

    queries = _corpus(database, tmp_path)
    golden = tmp_path / "golden.json"
    golden.write_text(json.dumps(chat_golden_set()))
    with model_server() as server:
        generator = LoadGenerator(
            server.url, golden, tmp_path, LoadProfile(users=2, rate_per_user=5),
            max_duration=60, index_queries=queries,
            protocol=ProtocolSettings(kind="openai-chat", model="m"),
            vector_store=_store(database),
        )  # fmt: skip
        generator.start()
        try:
            _wait_for(tmp_path, "search", 50)
            lost_at = time.time()
            # Half the corpus lost (every even id): recall falls to about a half.
            with psycopg.connect(database.dsn, autocommit=True) as connection:
                connection.execute("DELETE FROM rag.passages WHERE doc_id % 2 = 0")
            time.sleep(3.5)
            down_at = time.time()
            database.stop()  # the database gone: searches fail, inference goes on
            time.sleep(3.5)
        finally:
            generator.stop()
    healthy = _searches(tmp_path, 0, lost_at - 1)
    assert sum(b.requests for b in healthy) >= 30, healthy
    assert sum(b.failures for b in healthy) == 0, healthy
    recall = sum(b.correct for b in healthy) / sum(b.scored for b in healthy)
    assert recall == pytest.approx(1.0), recall  # no index: PostgreSQL scans exactly
    halved = _searches(tmp_path, lost_at + 1, down_at - 1)
    assert halved and sum(b.failures for b in halved) == 0, halved
    recall = sum(b.correct for b in halved) / sum(b.scored for b in halved)
    assert 0.3 <= recall <= 0.7, recall
    gone = _searches(tmp_path, down_at + 1, down_at + 3)
    assert gone and all(b.failures == b.requests > 0 for b in gone), gone
    answered = [b for b in evidence.read_timeline(tmp_path) if b.start >= down_at + 1]
    assert answered and all(b.failures == 0 and b.requests > 0 for b in answered), answered


def test_a_plan_names_its_vector_store_and_the_endpoint_target_reads_it(tmp_path: Path) -> None:
    """The plan's shape (aliases as a team writes them), and its mistakes refused."""
    estate = {
        "inference": "http://127.0.0.1:9/", "golden-set": "golden.json",
        "index-queries": "queries.json",
        "vector-store": {"kind": "pgvector", "dsn": "postgresql://reader@db:5432/rag",
                         "table": "passages", "distance": "cosine"},
    }  # fmt: skip
    plan_file = tmp_path / "plan.yaml"
    document = yaml.safe_load((Path(__file__).parents[1] / "drplan.yaml").read_text())
    document["estates"] = {"endpoint": estate}
    plan_file.write_text(yaml.safe_dump(document))
    from aidrill.plan import load_plan

    read = estate_of(load_plan(plan_file))
    assert read.vector_store is not None and read.vector_store.distance == "cosine"
    assert read.index_queries == "queries.json"
    # A password written into the plan would be copied into every run's evidence.
    for secret in ("postgresql://reader:s3cret@db:5432/rag", "host=db user=r password=s3cret"):
        with pytest.raises(ValueError, match="name an environment variable"):
            VectorStoreSettings.model_validate({**estate["vector-store"], "dsn": secret})  # type: ignore[dict-item]
    for wrong in ({"kind": "milvus"}, {"distance": "hamming"}, {"table": ""}, {"extra": 1}):
        with pytest.raises(ValueError):
            VectorStoreSettings.model_validate({**estate["vector-store"], **wrong})  # type: ignore[dict-item]
