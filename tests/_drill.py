"""Helpers to drive `aidrill run` as a real subprocess and watch its evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from aidrill.lab import LabClient
from aidrill.plan import load_plan


def start_run(workspace: Path, lab: LabClient, *experiments: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AIDRILL_STATE_DIR": str(lab.state_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "aidrill", "run", *experiments],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_aidrill(cwd: Path, state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the aidrill CLI to completion against the lab in ``state_dir``."""
    env = {**os.environ, "AIDRILL_STATE_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "aidrill", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def twin_env(state_dir: Path, twin: str) -> dict[str, str]:
    """The environment `aidrill lab status --env --twin TWIN` prints, as a dict."""
    done = subprocess.run(
        [sys.executable, "-m", "aidrill", "lab", "status", "--env", "--twin", twin,
         "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    env = {}
    for line in done.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value.strip("'")
    return env


def run_with_env(
    workspace: Path, env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`aidrill ARGS` in ``workspace`` with ``env`` added (a twin's, say)."""
    return subprocess.run(
        [sys.executable, "-m", "aidrill", *args],
        cwd=workspace,
        env={**os.environ, **env, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_dir_of(workspace: Path, timeout: float = 30) -> Path:
    runs = workspace / "reports" / "runs"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(runs.glob("*/")) if runs.exists() else []
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError("no run directory appeared")


def events(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for_event(run_dir: Path, kind: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in events(run_dir):
            if event["kind"] == kind:
                return event
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event within {timeout}s")


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` every 0.1 s until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def write_experiment(workspace: Path, source: str, name: str, **changes: Any) -> str:
    """Copy a shipped lab experiment with changes to its aidrill extension or method."""
    experiment = yaml.safe_load((workspace / "experiments" / "lab" / source).read_text())
    extension = experiment["extensions"][0]
    for key, value in changes.pop("extension", {}).items():
        extension[key] = value
    for key, value in changes.items():
        experiment[key] = value
    path = workspace / "experiments" / "lab" / name
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return f"experiments/lab/{name}"


def result(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "result.json").read_text())


LITERAL_SECRET = "hunter2-literal-secret"
CONFIG_SECRET = "db-password-value-7731"
ENV_SECRET = "env-token-value-5519"
SECRET_ENV_VAR = "AIDRILL_TEST_TOKEN"
SECRET_VALUES = (LITERAL_SECRET, CONFIG_SECRET, ENV_SECRET)


def truth_recovery_window(lab: LabClient, run_dir: Path) -> tuple[float, float] | None:
    """The lab's own account of when users could be served again, from the fault:
    no earlier than the first replacement node turning healthy after serving capacity
    was lost, no later than serving capacity restored in full. Users are served again
    once enough of the lost capacity is back, and how much is enough depends on how
    fast this machine answers (two of four nodes shed a share of the load; three do
    not), so the lab's truth for users is this span, not one of its ends."""
    recorded = events(run_dir)
    t_fault = next(e["time"] for e in recorded if e["kind"] == "fault_injected")
    end = next(e["time"] for e in recorded if e["kind"] == "rollbacks_started")
    truth = lab.ground_truth(since=t_fault)
    lost = next((r["time"] for r in truth if r["kind"] == "serving_capacity_lost"), None)
    if lost is None:
        return None
    after = [r for r in truth if lost < r["time"] <= end]
    first = next((r["time"] for r in after if r["kind"] == "node_healthy"), None)
    back = next((r["time"] for r in after if r["kind"] == "serving_capacity_restored"), None)
    if back is None:
        return None
    return (first if first is not None else back) - t_fault, back - t_fault


def _echo(name: str, reference: str) -> dict[str, Any]:
    return {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "os.path",
            "func": "join",
            "arguments": {"a": reference},
        },
    }


def write_secretive_experiment(
    workspace: Path, name: str, fault_pause: float | None = None, **changes: Any
) -> str:
    """gpu-node-loss (with the suite's shorter windows) holding a secret three ways
    (literal, from the environment, a secret-named configuration key), with probes that
    echo each one into their output. The environment secret is read from
    ``SECRET_ENV_VAR``."""
    experiment = yaml.safe_load((workspace / "experiments/lab/gpu-node-loss.yaml").read_text())
    experiment = make_fast(experiment, "gpu-node-loss")
    experiment["secrets"] = {
        "lab": {"api_token": {"type": "env", "key": SECRET_ENV_VAR}, "literal": LITERAL_SECRET}
    }
    experiment["configuration"]["db_password"] = CONFIG_SECRET
    if fault_pause is not None:
        experiment["method"][0]["pauses"] = {"after": fault_pause}
    experiment["method"][0:0] = [
        _echo("echo-config", "${db_password}"),
        _echo("echo-token", "${api_token}"),
        _echo("echo-literal", "${literal}"),
    ]
    experiment.update(changes)
    path = workspace / "experiments" / "lab" / name
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return f"experiments/lab/{name}"


# What the suite's copies of the shipped drills change (README's first command runs them
# as shipped; the short demo runs two of them as shipped): recovery must hold for
# FAST_SUSTAIN instead of the plan's 10 s, so every pause sized to hold a sustain is
# that much shorter.
FAST_SUSTAIN = 4.0
FAST_OBSERVE_BEFORE = 6.0  # covers the lab's longest copy interval (the registry's 5 s)
_SUSTAIN_CUT = 10.0 - FAST_SUSTAIN


# A fault held for a while to see how the system bears it (no recovery to wait for):
# the suite checks that its verdict rests on covered evidence, which 14 s shows as
# well as the demo's 60 s.
_PAUSE_CAP = {
    "network-degradation": 14,
    # A blind fault as shipped is never seen: users are hurt from its first second.
    **dict.fromkeys(("lying-health", "wrong-model", "stuck-loading", "gpu-degradation"), 8),
}


def make_fast(experiment: dict[str, Any], stem: str) -> dict[str, Any]:
    """The suite's shorter windows on an experiment document (see ``fast_variant``)."""
    cap = _PAUSE_CAP.get(stem)
    for extension in experiment.get("extensions") or []:
        if extension.get("name") == "aidrill":
            extension["sustain"] = f"{FAST_SUSTAIN:g}s"
            if _measures_an_rpo(extension):  # otherwise the run observes nothing before
                extension.setdefault("observe-before", f"{FAST_OBSERVE_BEFORE:g}s")
            if cap is None:  # a fault held to be borne is watched for its whole pause
                extension.setdefault("hold-until-recovered", True)
    for activity in experiment.get("method") or []:
        after = (activity.get("pauses") or {}).get("after")
        if isinstance(after, int | float) and after >= 12:
            activity["pauses"]["after"] = after - _SUSTAIN_CUT
            if cap is not None:
                activity["pauses"]["after"] = min(activity["pauses"]["after"], cap)
    return experiment


def _measures_an_rpo(extension: dict[str, Any]) -> bool:
    plan = load_plan(Path(__file__).resolve().parents[1] / "drplan.yaml")
    measured = (plan.component(name) for name in extension.get("components") or [])
    return any(c is not None and c.rpo is not None for c in measured)


def fast_variant(workspace: Path, shipped: str) -> str:
    """A copy of the shipped experiment ``shipped`` (``experiments/lab/x.yaml``) with the
    suite's shorter windows: what it injects, how, and what it measures are unchanged.
    Pauses of 12 s or more (the windows that hold a recovery and its sustain) lose the
    difference between the plan's sustain and FAST_SUSTAIN; shorter ones (a fault's own
    length, such as a replication pause that sets an RPO) are kept; a fault only held
    to be borne is held for at most its ``_PAUSE_CAP``. Every other pause after a fault
    ends once the recovery is proven (``hold-until-recovered``): a pause is the most a
    run waits, so a loaded machine gets the whole window and an idle one moves on."""
    source = workspace / shipped
    experiment = make_fast(yaml.safe_load(source.read_text()), source.stem)
    target = source.with_name(f"{source.stem}-fast.yaml")
    target.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return str(target.relative_to(workspace))
