"""Run directories built from synthetic evidence, measured by aidrill's real writer.

Only the events and the timeline are made up; result.json and report.html come from
the same code a live run uses, so report tests see what a run would have written.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from aidrill._signing import seal_run
from aidrill.run._results import write_run_page, write_run_result

from .conftest import REPO

Events = list[tuple[float, str, dict[str, Any]]]


def synthetic_run(
    runs: Path,
    slug: str,
    start: float,
    outage: float = 5.0,
    rollback_ok: bool = True,
    fault_ok: bool = True,
    experiment: str = "gpu-node-loss.yaml",
    extra_events: Events | None = None,
    participants: list[dict[str, Any]] | None = None,
    relapse: tuple[float, float] | None = None,
    health: list[tuple[float, dict[str, bool]]] | None = None,
    page: bool = True,
    served: bool = False,
    **changes: Any,
) -> Path:
    """A 60 s run of ``experiment``: fault at +20 s, an outage of ``outage`` seconds,
    rollbacks at +50 s. ``fault_ok``/``rollback_ok`` False make the fault or its
    rollback fail the way a live run records it; ``relapse`` (offset from the start,
    seconds) takes the service down again after it recovered; ``health`` (offset from the
    start, signals) is what the target's health checks claimed (health.jsonl); ``served``
    names the node behind each answer (lab-east-node-1 and -2, and after the fault -1
    and the replacement -3), as a server's node header does; ``page``
    False leaves out the run's own report.html (its chart costs 0.2 s; a quarter's
    report does not read it);
    ``changes`` replace top-level keys of the experiment (its title, its configuration),
    as a run's redacted copy holds them."""
    stamp = datetime.fromtimestamp(start, UTC)
    run_dir = runs / f"{stamp:%Y%m%dT%H%M%SZ}-{slug}"
    run_dir.mkdir(parents=True)
    shutil.copy(REPO / "drplan.yaml", run_dir / "plan.yaml")
    document = yaml.safe_load((REPO / "experiments/lab" / experiment).read_text())
    document.update(changes)
    (run_dir / "experiment.yaml").write_text(yaml.safe_dump(document))
    fault_name = document["method"][0]["name"]
    rollback_name = document["rollbacks"][0]["name"]
    t_fault = start + 20
    people = participants or []
    events: Events = [
        (start, "run_started", {"planned_faults": [fault_name], "participants": people}),
        (start + 0.5, "preflight", {"problems": []}),
        (start + 1, "load_started", {}),
        (t_fault, "fault_started", {"activity": fault_name}),
    ]
    if fault_ok:
        events.append((t_fault, "fault_injected", {"activity": fault_name}))
    else:
        events.append((t_fault + 0.1, "fault_failed", {"activity": fault_name, "error": "refused"}))
    events += [
        (start + 50, "rollbacks_started", {}),
        (
            start + 51,
            "rollback_ran",
            {
                "activity": rollback_name,
                "status": "succeeded" if rollback_ok else "failed",
                **({} if rollback_ok else {"error": "did not restore"}),
            },
        ),
        (start + 60, "load_stopped", {}),
        *(extra_events or []),
    ]
    (run_dir / "events.jsonl").write_text(
        "".join(json.dumps({"time": t, "kind": k, **d}) + "\n" for t, k, d in events)
    )
    lines = []
    for second in range(60):
        down = fault_ok and t_fault <= start + second < t_fault + outage
        if relapse is not None and relapse[0] <= second < relapse[0] + relapse[1]:
            down = True
        lines.append(
            json.dumps(
                {
                    "start": start + second,
                    "width": 1.0,
                    "requests": 30,
                    "failures": 30 if down else 0,
                    "p50": 0.1,
                    "p95": 0.2,
                    "p99": 0.25,
                    "max": 0.3,
                    "correct": 0 if down else 29,
                    "scored": 0 if down else 30,
                    "regions": {"lab-east": 30},
                    **({"nodes": _nodes(down, start + second >= t_fault)} if served else {}),
                }
            )
        )
    (run_dir / "timeline.jsonl").write_text("\n".join(lines) + "\n")
    if health is not None:
        (run_dir / "health.jsonl").write_text("".join(
            json.dumps({"time": start + offset, "signals": signals}) + "\n"
            for offset, signals in health
        ))  # fmt: skip
    write_run_result(run_dir, "completed", False)
    if page:
        write_run_page(run_dir)
    seal_run(run_dir)  # as a run does when it ends
    return run_dir


def _nodes(down: bool, after_fault: bool) -> dict[str, int]:
    """Who served a synthetic bucket's 30 answers: nobody while down; node -2 is lost
    with the fault and the replacement -3 serves after it."""
    if down:
        return {}
    return {"lab-east-node-1": 15, "lab-east-node-3" if after_fault else "lab-east-node-2": 15}
