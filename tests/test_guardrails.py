"""Guardrails abort a run, roll it back and record why."""

from __future__ import annotations

from pathlib import Path

from aidrill.lab import LabClient
from aidrill.measure import Bucket
from aidrill.plan import Guardrails
from aidrill.run._guardrails import breach_of

from ._drill import events, result, run_dir_of, start_run, write_experiment


def test_breach_of_names_the_limit() -> None:
    limits = Guardrails.model_validate({"max_error_ratio": 0.5, "max_p95_latency": "1s"})
    assert breach_of(Bucket(0, 1, 10, 6, p95=0.1), limits) == "error ratio 60% above 50%"
    assert breach_of(Bucket(0, 1, 10, 0, p95=1.5), limits) == "p95 latency 1500ms above 1000ms"
    assert breach_of(Bucket(0, 1, 10, 5, p95=1.0), limits) is None


def test_error_ratio_guardrail_aborts_and_rolls_back(workspace: Path, lab: LabClient) -> None:
    experiment = write_experiment(
        workspace,
        "region-failover-no-gpu-capacity.yaml",
        "guarded.yaml",
        extension={"guardrails": {"max_error_ratio": 0.5, "for": "3s"}},
    )
    process = start_run(workspace, lab, experiment)
    run_dir = run_dir_of(workspace)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "guardrail" in stderr
    outcome = result(run_dir)
    assert outcome["status"] == "aborted"
    assert outcome["abort_reason"].startswith("guardrail: error ratio")
    kinds = [e["kind"] for e in events(run_dir)]
    tripped = kinds.index("guardrail_tripped")
    assert kinds.index("fault_injected") < tripped < kinds.index("rollbacks_started")
    assert all(r["status"] == "succeeded" for r in outcome["rollbacks"])
    assert len(outcome["rollbacks"]) == 2
    fault = next(e for e in events(run_dir) if e["kind"] == "fault_injected")["time"]
    trip = next(e for e in events(run_dir) if e["kind"] == "guardrail_tripped")["time"]
    assert trip - fault < 15, "aborted well before the 25 s observation pause ended"
    assert lab.status()["faults"] == []
    assert "Run aborted" in (run_dir / "report.html").read_text()


def test_maximum_duration_aborts_the_run(workspace: Path, lab: LabClient) -> None:
    experiment = write_experiment(
        workspace, "gpu-node-loss.yaml", "short-leash.yaml", extension={"max-duration": "8s"}
    )
    process = start_run(workspace, lab, experiment)
    run_dir = run_dir_of(workspace)
    process.communicate(timeout=120)
    outcome = result(run_dir)
    assert outcome["status"] == "aborted"
    assert outcome["abort_reason"] == "the run exceeded its maximum duration of 8s"
    assert lab.status()["faults"] == []
