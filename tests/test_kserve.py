"""The Open Inference Protocol against a server nobody here wrote: KServe's own Python
model server (``kserve.ModelServer``, a real subprocess over loopback HTTP) serving a
flower classifier whose rule the test knows (``tests/_kserve_flowers.py``). The
steady-state probe and the load (the real Locust subprocess a drill starts) read
KServe's answers and score them as they deserve (issue 27, item 6)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aidrill.load import LoadGenerator, LoadProfile
from aidrill.plan import ProtocolSettings
from aidrill.probes import InferenceCheck, run_inference_check
from aidrill.targets import Endpoints
from tests._model_servers import FLOWERS, tensor_golden_set
from tests._subprocess_server import answers_get, free_port, load_until, served

REPO = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, Any] = {"kind": "open-inference", "model": "flowers", "output": "species"}
DESERVED = 0.6  # every virginica is missed: 4 of the 10 flowers


@pytest.fixture(scope="module")
def kserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """KServe's model server on a free loopback port, its log kept; stopped after."""
    port = free_port()
    command = [sys.executable, "-m", "tests._kserve_flowers", str(port)]
    log_path = tmp_path_factory.mktemp("kserve") / "server.log"
    with served(command, port, REPO, log_path, answers_get("/v2/models/flowers/ready")) as url:
        yield url


def _golden(tmp_path: Path) -> Path:
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(tensor_golden_set()))
    return path


def _endpoints(url: str, golden: Path) -> Endpoints:
    return Endpoints(url, golden, "east", "west", protocol=ProtocolSettings(**SETTINGS))


def test_the_steady_state_probe_scores_kserves_answers(kserve: str, tmp_path: Path) -> None:
    check = InferenceCheck(type="inference", name="kserve", requests=len(FLOWERS),
                           success_ratio=1.0, p95_latency=5.0, quality=DESERVED)  # fmt: skip
    outcome = run_inference_check(check, _endpoints(kserve, _golden(tmp_path)))
    assert outcome.figures["success_ratio"] == 1.0, outcome
    assert outcome.figures["quality"] == pytest.approx(DESERVED), outcome
    assert outcome.holds, outcome
    # A floor the server does not reach fails the check: the score is KServe's answers',
    # not a constant.
    stricter = check.model_copy(update={"quality": 0.9})
    assert not run_inference_check(stricter, _endpoints(kserve, _golden(tmp_path))).holds


def test_the_load_reads_and_scores_kserves_answers_second_by_second(
    kserve: str, tmp_path: Path
) -> None:
    generator = LoadGenerator(
        kserve, _golden(tmp_path), tmp_path, LoadProfile(users=4, rate_per_user=5),
        max_duration=30, protocol=ProtocolSettings(**SETTINGS),
    )  # fmt: skip
    buckets = load_until(generator, tmp_path, 80)
    assert sum(b.requests for b in buckets) >= 60, buckets
    assert sum(b.failures for b in buckets) == 0, buckets
    quality = sum(b.correct for b in buckets) / sum(b.scored for b in buckets)
    assert quality == pytest.approx(DESERVED, abs=0.12), quality
