"""Hostile and foreign inputs: bounded, clear, and never pulled into signed evidence.

Each `aidrill validate` case runs the real CLI in a child process and checks its exit
code, its one-line message, that no traceback is printed, and that it stays under
10 s and 256 MB whatever the input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aidrill.cli.main import cli
from aidrill.report import Quarter, verify_manifest

from ._runs import synthetic_run
from .conftest import REPO

LIMIT_SECONDS = 10.0
LIMIT_BYTES = 256 * 1024 * 1024

BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)


def _plain_experiment(process: str = "true") -> dict[str, object]:
    """A Chaos Toolkit experiment with no aidrill settings, as teams write them."""
    return {
        "version": "1.0.0",
        "title": "Restart the recommender container",
        "description": "a team's own experiment",
        "steady-state-hypothesis": {
            "title": "the shell answers",
            "probes": [
                {
                    "type": "probe",
                    "name": "shell-answers",
                    "tolerance": 0,
                    "provider": {"type": "process", "path": "true"},
                },
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "stop-the-container",
                "provider": {"type": "process", "path": process},
            },
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "start-the-container",
                "provider": {"type": "process", "path": "true"},
            },
        ],
    }


# Linux counts the RSS a process borrowed from its parent before exec in its peak
# (ru_maxrss), so a child of a big pytest process looks big. A small helper process
# starts `aidrill validate` and reports the peak of that grandchild alone.
_PEAK_HELPER = (
    "import os, subprocess, sys; child = subprocess.Popen(sys.argv[2:]); "
    "_, status, usage = os.wait4(child.pid, 0); "
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss)); "
    "sys.exit(os.waitstatus_to_exitcode(status))"
)


def _validate(*paths: Path, cwd: Path = REPO) -> tuple[int, str, float, int]:
    """Run `aidrill validate` in a child; (exit code, output, seconds, its peak RSS)."""
    import signal
    import tempfile
    import threading

    with tempfile.TemporaryDirectory() as folder:
        peak_file = Path(folder) / "peak"
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-c", _PEAK_HELPER, str(peak_file),
             sys.executable, "-m", "aidrill", "validate", *map(str, paths)],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        # A hang fails the test, not the suite.
        watchdog = threading.Timer(30, lambda: os.killpg(child.pid, signal.SIGKILL))
        watchdog.start()
        try:
            assert child.stdout is not None
            output = child.stdout.read()
            child.wait()
        finally:
            watchdog.cancel()
            child.stdout.close()  # type: ignore[union-attr]
        seconds = time.monotonic() - started
        peak = int(peak_file.read_text() or 0) * 1024 if peak_file.exists() else 1 << 62
    return child.returncode, " ".join(output.split()), seconds, peak


def _hostile_files(root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the words its one error must contain)."""
    cases: dict[str, tuple[Path, str]] = {}

    def write(name: str, text: str, expect: str) -> None:
        (root / name).write_text(text)
        cases[name] = (root / name, expect)

    write("bomb.yaml", BOMB, "alias bomb")
    write("deep.json", "[" * 500 + "]" * 500, "nested too deep")
    write("deep.yaml", "a:\n" + "".join(" " * 2 * (i + 1) + "b:\n" for i in range(300)),
          "nested too deep")  # fmt: skip
    write("duplicate.yaml", "title: x\nmethod: []\nmethod: [1]\n",
          "duplicate key 'method' (lines 2 and 3)")  # fmt: skip
    write("duplicate.json", '{"title": "x",\n "method": [],\n "method": [1]}',
          "duplicate key 'method' (lines 2 and 3)")  # fmt: skip
    (root / "huge.yaml").write_bytes(b"a: " + b"x" * (9 * 1024 * 1024))
    cases["huge.yaml"] = (root / "huge.yaml", "too large")
    os.mkfifo(root / "fifo.yaml")
    cases["fifo.yaml"] = (root / "fifo.yaml", "not a regular file (a FIFO)")
    (root / "zero.json").symlink_to("/dev/zero")
    cases["zero.json"] = (root / "zero.json", "not a regular file (a character device)")
    (root / "folder.yaml").mkdir()
    cases["folder.yaml"] = (root / "folder.yaml", "not a regular file (a directory)")
    return cases


def test_every_hostile_document_is_one_clear_error_within_bounds(tmp_path: Path) -> None:
    for name, (path, expect) in _hostile_files(tmp_path).items():
        code, output, seconds, peak = _validate(path)
        assert code == 2, (name, output)
        assert expect in output, (name, output)
        assert output.count("error:") == 1 and "Traceback" not in output, (name, output)
        assert str(path) in output, (name, "the message names the file")
        assert seconds < LIMIT_SECONDS, (name, seconds)
        assert peak < LIMIT_BYTES, (name, peak)


def test_nesting_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a:\n" + "".join(" " * 2 * (i + 1) + "b:\n" for i in range(100)))
    code, output, _, _ = _validate(path)
    assert code == 2 and f"{path}:64: nested too deep (more than 64 levels)" in output, output


def test_a_plain_chaos_toolkit_experiment_validates(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(_plain_experiment()))
    code, output, _, _ = _validate(path)
    assert code == 0, output
    assert "runs as a plain experiment; nothing is measured against the plan" in output


def test_a_plain_experiment_runs_with_rollbacks_redaction_and_evidence(tmp_path: Path) -> None:
    experiment = _plain_experiment(process="echo")
    experiment["configuration"] = {"db_password": "plain-run-secret-5521"}
    experiment["method"][0]["provider"]["arguments"] = "${db_password}"  # type: ignore[index]
    experiment["rollbacks"][0]["provider"] = {  # type: ignore[index]
        "type": "python",
        "module": "os",
        "func": "rmdir",
        "arguments": {"path": str(tmp_path / "no-such-container")},
    }
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(experiment))
    (tmp_path / "drplan.yaml").write_text((REPO / "drplan.yaml").read_text())
    done = subprocess.run(
        [sys.executable, "-m", "aidrill", "run", "plain.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stdout + done.stderr  # its rollback failed
    assert "nothing measured" in done.stdout
    (run_dir,) = (tmp_path / "reports/runs").iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["plain"] is True and result["components"] == []
    assert "the rollback start-the-container failed" in result["invalid_reasons"][0]["reason"]
    journal = json.loads((run_dir / "journal.json").read_text())
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["start-the-container"]
    for path in run_dir.iterdir():
        assert "plain-run-secret-5521" not in path.read_text(errors="replace"), path


def test_a_teams_own_action_declares_its_scope_and_the_limits_apply(tmp_path: Path) -> None:
    experiment = _plain_experiment()
    experiment["extensions"] = [
        {
            "name": "aidrill",
            "components": ["inference"],
            "test-type": "chaos",
            "scopes": {
                "stop-the-container": {"region": "lab-east", "kind": "gpu-nodes", "share": 0.25}
            },
        }
    ]
    within = tmp_path / "within.yaml"
    within.write_text(yaml.safe_dump(experiment))
    experiment["extensions"][0]["scopes"]["stop-the-container"]["share"] = 0.75  # type: ignore[index]
    beyond = tmp_path / "beyond.yaml"
    beyond.write_text(yaml.safe_dump(experiment))
    del experiment["extensions"][0]["scopes"]  # type: ignore[attr-defined]
    undeclared = tmp_path / "undeclared.yaml"
    undeclared.write_text(yaml.safe_dump(experiment))
    assert _validate(within)[0] == 0
    code, output, _, _ = _validate(beyond)
    assert code == 2 and "75% of the GPU nodes of lab-east" in output, output
    code, output, _, _ = _validate(undeclared)
    assert code == 2 and "declare it in the aidrill extension" in output, output


# -- the quarterly report --------------------------------------------------------------


def _journal(title: str, start: str, status: str = "completed", **extra: object) -> dict:
    experiment = {**_plain_experiment(), "title": title}
    return {
        "chaoslib-version": "1.44.0",
        "experiment": experiment,
        "status": status,
        "deviated": False,
        "start": start,
        "end": start,
        "run": [
            {
                "activity": experiment["method"][0],
                "status": "succeeded",
                "start": start,  # type: ignore[index]
                "end": start,
                "output": None,
            },
        ],
        "rollbacks": [],
        **extra,
    }


@pytest.fixture
def hostile_runs(tmp_path: Path) -> Path:
    """A runs folder holding one valid drill and everything a hostile user could put
    there: a deep journal, a FIFO, a link out of a run, secrets in a foreign journal,
    a journal of another quarter, a failed and an interrupted plain run."""
    runs = tmp_path / "reports" / "runs"
    quarter = Quarter.current()
    start = quarter.start.timestamp() + 3600
    linked = synthetic_run(runs, "gpu-node-loss", start)
    (linked / "run.log").unlink(missing_ok=True)
    (linked / "run.log").symlink_to("/etc/passwd")
    (runs / "deep.json").write_text('{"experiment": ' + "[" * 5000 + "]" * 5000 + "}")
    os.mkfifo(runs / "stuck.json")
    (runs / "dev.json").symlink_to("/dev/zero")
    stamp = quarter.start.isoformat()
    secretive = _journal("Rotate the API key", stamp)
    secretive["experiment"]["secrets"] = {"vault": {"api_key": "hunter2-plain-journal-secret"}}
    secretive["experiment"]["configuration"] = {"db_password": "plain-config-secret-9931"}
    (runs / "secretive.json").write_text(json.dumps(secretive))
    (runs / "old.json").write_text(json.dumps(_journal("Last year", "2020-01-02T00:00:00+00:00")))
    failed = _journal("Failed plain run", stamp, status="failed")
    failed["run"][0]["status"] = "failed"
    (runs / "failed.json").write_text(json.dumps(failed))
    (runs / "interrupted.json").write_text(
        json.dumps(_journal("Interrupted plain run", stamp, status="interrupted"))
    )
    return tmp_path


def test_the_report_survives_every_hostile_run_and_seals_no_secret_or_link(
    hostile_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (hostile_runs / "drplan.yaml").write_text((REPO / "drplan.yaml").read_text())
    monkeypatch.chdir(hostile_runs)
    quarter = str(Quarter.current())
    started = time.monotonic()
    result = CliRunner().invoke(
        cli, ["report", "--quarter", quarter, "--format", "json,junit,html"]
    )
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 60, "a FIFO never blocks the report"
    folder = hostile_runs / "reports" / quarter
    results = json.loads((folder / "results.json").read_text())
    by_id = {r["run_id"]: r for r in results["runs"]}
    for name in ("deep", "stuck", "dev"):
        assert by_id[name]["kind"] == "broken", name
    assert "nested too deep" in by_id["deep"]["problem"]
    assert "symbolic link" in by_id["dev"]["problem"]
    assert "not a regular file" in by_id["stuck"]["problem"]
    assert results["left_out"] == ["old"], "the run of another quarter is named"
    assert "1 run(s) outside" in (folder / "index.html").read_text()
    # The link out of the run is recorded, never followed or copied.
    bundle = folder / "evidence"
    assert not any(p.name == "run.log" for p in bundle.rglob("*")), "no link target copied"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert any(
        link["link"] == "/etc/passwd" and link["path"].endswith("run.log")
        for link in manifest["links_not_copied"]
    )
    for path in bundle.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "hunter2-plain-journal-secret" not in text, path
            assert "plain-config-secret-9931" not in text, path
            assert "root:x:0:0" not in text, path
    redacted = [e for e in manifest["files"] if e.get("redacted")]
    assert [Path(e["path"]).name for e in redacted] == ["secretive.json"]
    original = (hostile_runs / "reports/runs/secretive.json").read_bytes()
    import hashlib

    assert redacted[0]["original_sha256"] == hashlib.sha256(original).hexdigest()
    verification = verify_manifest(folder)
    assert verification.ok and verification.recorded_links and verification.redacted
    # A link planted in the sealed folder is flagged by verify.
    (bundle / "planted.json").symlink_to("/etc/hostname")
    assert not verify_manifest(folder).ok
    # Plain runs: actions listed, failures fail the CI gate, interruptions are said.
    junit = (folder / "junit.xml").read_text()
    assert 'message="the run failed"' in junit and 'message="the run interrupted"' in junit
    page = (folder / "index.html").read_text()
    assert "stop-the-container: process true (scope not declared)" in page
    assert "the run interrupted" in page
