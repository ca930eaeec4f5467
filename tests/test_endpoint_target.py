"""The ``endpoint`` kind of target: a model server nobody here built (a test double of
an OpenAI-compatible server, streamed), drilled with a fault from a plain process
action, measured against the moment the test restored it (issues 26 and 27).

The kind lives in its own folder (``aidrill.targets.endpoint``) and its entry point:
no other module of aidrill names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from aidrill import _evidence as evidence
from tests._model_servers import chat_golden_set, model_server

REPO = Path(__file__).resolve().parents[1]
_DOWN_FOR = 6.0  # seconds the test keeps the server down after the fault


def _plan(folder: Path, url: str) -> Path:
    plan = yaml.safe_load((REPO / "drplan.example.yaml").read_text())
    for shipped in ("aws", "kubernetes", "suites"):
        plan.pop(shipped, None)
    regions = [{"name": "east", "role": "primary"}, {"name": "west", "role": "dr"}]
    plan.update(target="endpoint", allow={"targets": ["endpoint"]}, regions=regions)
    plan["slo"].update(success_ratio=0.95, p95_latency="1s", quality_floor=0.6, sustain="3s",
                       ttft_p95="900ms", max_blind="5s")  # fmt: skip
    plan["components"] = [c for c in plan["components"] if c["name"] == "inference"]
    plan["components"][0]["rto"] = "30s"
    plan["estates"] = {"endpoint": {
        "inference": url, "golden-set": "golden.json", "health": f"{url}/health",
        "protocol": {"kind": "openai-chat", "model": "llama-3-8b", "stream": True,
                     "node-header": "X-Served-By"},
    }}  # fmt: skip
    (folder / "golden.json").write_text(json.dumps(chat_golden_set()))
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def _switch(url: str, state: str) -> dict[str, Any]:
    code = f"import urllib.request as u; u.urlopen(u.Request('{url}/admin/{state}', method='POST'))"
    return {"type": "process", "path": sys.executable, "arguments": ["-c", code]}


def _experiment(folder: Path, url: str) -> Path:
    probe_set = {"kind": "probe-set", "name": "endpoint", "description": "it serves", "checks": [
        {"type": "inference", "name": "serves-golden-set", "requests": 10, "success_ratio": 1.0,
         "p95_latency": "1s", "quality": 0.6}]}  # fmt: skip
    (folder / "endpoint-probes.yaml").write_text(yaml.safe_dump(probe_set))
    probe = {"type": "probe", "name": "serves", "tolerance": True,
             "provider": {"type": "python", "module": "aidrill.probes",
                          "func": "probe_set_holds",
                          "arguments": {"probe_set": "endpoint-probes.yaml"}}}  # fmt: skip
    body = {
        "version": "1.0.0",
        "title": "the model server goes down",
        "description": "the team's own switch takes the endpoint down",
        "extensions": [{
            "name": "aidrill", "components": ["inference"], "test-type": "full-region",
            "target": "endpoint", "load": {"users": 4, "rate_per_user": 5},
            "max-duration": "2m", "hold-until-recovered": True,
            "guardrails": {"max_error_ratio": 1.0, "max_p95_latency": "5s", "for": "60s"},
            "scopes": {"take-the-server-down": {"region": "east", "kind": "region"}},
        }],
        "controls": [{"name": "aidrill", "provider": {"type": "python",
                                                       "module": "aidrill.run.control"}}],
        "steady-state-hypothesis": {"title": "it serves", "probes": [probe]},
        "method": [{"type": "action", "name": "take-the-server-down",
                    "provider": _switch(url, "down"), "pauses": {"after": 30}}],
        "rollbacks": [{"type": "action", "name": "bring-it-back", "provider": _switch(url, "up")}],
    }  # fmt: skip
    path = folder / "server-down.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _restore_after_the_fault(
    server: Any, restored: list[tuple[float, float]], ended: threading.Event
) -> None:
    """The test, not the drill, brings the server back _DOWN_FOR seconds after the
    fault: the truth the measured RTO is held to. The instant is known to the clock
    reads on either side of the switch: on a busy host this thread may wait for the GIL
    between the switch and a read after it while the server already answers (a CI run
    saw 0.15 s)."""
    while not server.down and not ended.is_set():
        time.sleep(0.02)
    if server.down:
        time.sleep(_DOWN_FOR)
        before = time.time()
        server.replica = "replica-2"  # the server comes back as a replacement
        server.down = False
        restored.append((before, time.time()))


def test_the_endpoints_own_health_url_is_polled_as_a_load_balancer_would(tmp_path: Path) -> None:
    """Honest, lying and unreachable health endpoints, read as the health series is:
    healthy only on a 2xx answer; named without the URL's credentials or query."""
    from aidrill.plan import load_plan
    from aidrill.targets import target_for

    with model_server() as server:
        plan = load_plan(_plan(tmp_path, server.url))
        target = target_for("endpoint", plan)
        poll = target.endpoints().health_signals
        assert poll is not None
        name = f"GET 127.0.0.1:{server.server_address[1]}/health"
        assert poll() == {name: True}
        server.down = True
        assert poll() == {name: False}, "503 while down"
        server.lying_health = True  # vLLM's /health answering 200 with its engine dead
        assert poll() == {name: True}
    assert poll() == {name: False}, "no answer is a failed health check"
    secret = yaml.safe_load(_plan(tmp_path, "http://user:hunter2@127.0.0.1:9").read_text())
    secret["estates"]["endpoint"]["health"] = "http://user:hunter2@127.0.0.1:9/health?token=s3"
    (tmp_path / "secret.yaml").write_text(yaml.safe_dump(secret))
    polled = target_for("endpoint", load_plan(tmp_path / "secret.yaml")).endpoints().health_signals
    assert polled is not None and polled() == {"GET 127.0.0.1:9/health": False}
    # A plan that names no health URL: nothing to poll, so no health series at all.
    secret["estates"]["endpoint"].pop("health")
    (tmp_path / "no-health.yaml").write_text(yaml.safe_dump(secret))
    quiet = target_for("endpoint", load_plan(tmp_path / "no-health.yaml")).endpoints()
    assert quiet.health_signals is None


@pytest.mark.lab  # a whole drill: the slow tier, though it needs no lab
@pytest.mark.parametrize("health", ["honest", "lying"])
def test_an_endpoint_nobody_here_built_is_drilled_and_its_rto_measured(
    tmp_path: Path, health: str
) -> None:
    with model_server() as server:
        server.lying_health = health == "lying"
        plan = _plan(tmp_path, server.url)
        experiment = _experiment(tmp_path, server.url)
        restored: list[tuple[float, float]] = []
        ended = threading.Event()
        helper = threading.Thread(target=_restore_after_the_fault, args=(server, restored, ended))
        helper.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIDRILL_")}
        done = subprocess.run(
            [sys.executable, "-m", "aidrill", "run", "--no-live", "--plan", str(plan),
             "--reports", str(tmp_path / "reports"), str(experiment)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        ended.set()
        helper.join(timeout=30)
        server_host = f"127.0.0.1:{server.server_address[1]}"
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == 0, output
    run_dir = next((tmp_path / "reports" / "runs").iterdir())
    result = json.loads((run_dir / "result.json").read_text())
    assert result["valid"] is True, result["invalid_reasons"]
    assert result["target"] == "endpoint"
    inference = next(c for c in result["components"] if c["name"] == "inference")
    assert inference["verdict"] == "met", inference
    events = evidence.read_events(run_dir)
    fault = next(e.data.get("when") or e.time for e in events if e.kind == "fault_injected")
    (back_from, back_by) = restored[0]
    truth = (back_from + back_by) / 2 - fault
    assert abs(inference["achieved"]["rto_seconds"] - truth) <= 1.0, (inference["achieved"], truth)
    # An endpoint keeps no activity log; aidrill polled its health URL beside the load.
    blind = inference["achieved"]["blind"]
    assert any(e.kind == "activities_unavailable" for e in events)
    assert blind["measured"] is True, blind
    signal = f"GET {server_host}/health"
    polls = [json.loads(line) for line in (run_dir / evidence.HEALTH_FILE).read_text().splitlines()]
    if health == "honest":
        # The server's 503 there is the reaction that ends the blind stretch: within
        # one health poll (0.5 s) and a bucket of the fault, named, in the evidence.
        assert blind["detected"] is True and blind["seconds"] <= 1.5, blind
        assert not blind["over_limit"], blind
        assert blind["reaction"] == f"health signal {signal} said unhealthy", blind
        assert any(p["signals"] == {signal: False} for p in polls)
    else:
        # 200 all through the outage (vLLM's /health with its engine dead): served blind
        # for the whole window while every health sample said healthy, over the plan's
        # 5 s, and the run page says so beside what users got.
        assert blind["detected"] is False and blind["reaction"] == "never during the window"
        assert blind["seconds"] == blind["window_seconds"] > 5.0, blind
        assert blind["health_said_healthy"] == 1.0 and blind["over_limit"] is True, blind
        assert polls and all(p["signals"] == {signal: True} for p in polls)
    # Where the RTO went: the gateway's header names the replica that served each
    # answer, and the replacement's first answers end the load phase, within a bucket
    # of the moment the test brought it back. The mark is the end of the bucket its
    # first answer began in; an answer already in flight when the server came back
    # (begun in the bucket before, answered by the replacement on a busy host) puts it
    # up to that answer's wait before the switch, never more than half a second here.
    phases = inference["achieved"]["phases"]
    assert phases[-1]["phase"] == "warm" and phases[-2]["phase"].endswith("load"), phases
    boundary = fault + phases[-2]["from_fault_seconds"] + phases[-2]["seconds"]
    assert back_from - 0.5 <= boundary <= back_by + 1.0, (
        phases,
        back_from - fault,
        back_by - fault,
    )
    assert "first answer from node replica-2" in phases[-2]["evidence"], phases
    # Streamed answers were timed through the whole run, and the golden set was checked
    # against the healthy server before the fault.
    streamed = [b for b in evidence.read_timeline(run_dir) if b.ttft_p95 is not None]
    assert len(streamed) >= 5
    assert any(e.kind == "golden_set_checked" and e.data["quality"] == 0.8 for e in events)
    page = (run_dir / evidence.REPORT_FILE).read_text()
    assert "time to first token p95" in page and "inter-token latency p95" in page
