"""Secrets never reach a copy of the experiment, a journal, events, logs or the page."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from aidrill._redact import REDACTED, collect_secret_values, redact

from ._drill import result, run_dir_of, start_run

LITERAL_SECRET = "hunter2-literal-secret"
CONFIG_SECRET = "db-password-value-7731"
ENV_SECRET = "env-token-value-5519"
TITLE = "<script>alert(1)</script>"


def test_redact_masks_secret_sections_keys_and_values() -> None:
    experiment = {
        "secrets": {"lab": {"token": LITERAL_SECRET, "from_env": {"type": "env", "key": "T"}}},
        "configuration": {"db_password": CONFIG_SECRET, "region": "lab-east"},
        "method": [{"arguments": {"note": f"uses {CONFIG_SECRET}"}}],
    }
    secrets = collect_secret_values(experiment)
    assert {LITERAL_SECRET, CONFIG_SECRET} <= secrets
    safe = redact(experiment, secrets)
    assert safe["secrets"]["lab"]["token"] == REDACTED
    assert safe["secrets"]["lab"]["from_env"] == {"type": "env", "key": "T"}
    assert safe["configuration"]["db_password"] == REDACTED
    assert safe["configuration"]["region"] == "lab-east"
    assert CONFIG_SECRET not in str(safe)


def _echo(name: str, reference: str) -> dict:
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


def test_a_run_with_secrets_leaks_none_of_them(workspace, lab) -> None:  # type: ignore[no-untyped-def]
    source = workspace / "experiments" / "lab" / "gpu-node-loss.yaml"
    experiment = yaml.safe_load(source.read_text())
    experiment["title"] = TITLE
    experiment["secrets"] = {
        "lab": {
            "api_token": {"type": "env", "key": "AIDRILL_TEST_TOKEN"},
            "literal": LITERAL_SECRET,
        }
    }
    experiment["configuration"]["db_password"] = CONFIG_SECRET
    method = experiment["method"]
    method[0]["pauses"] = {"after": 3}
    method[1:1] = [
        _echo("echo-config", "${db_password}"),
        _echo("echo-token", "${api_token}"),
        _echo("echo-literal", "${literal}"),
    ]
    experiment["method"] = method
    path = workspace / "experiments" / "lab" / "secretive.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    os.environ["AIDRILL_TEST_TOKEN"] = ENV_SECRET
    try:
        process = start_run(workspace, lab, "experiments/lab/secretive.yaml")
        stdout, stderr = process.communicate(timeout=120)
    finally:
        del os.environ["AIDRILL_TEST_TOKEN"]
    run_dir = run_dir_of(workspace)
    journal = (run_dir / "journal.json").read_text()
    assert journal.count(REDACTED) >= 3, "the probes' outputs were there, and redacted"
    outputs: list[Path] = [*run_dir.iterdir(), workspace / "reports" / "index.html"]
    for file in outputs:
        text = file.read_text(errors="replace")
        for secret in (LITERAL_SECRET, CONFIG_SECRET, ENV_SECRET):
            assert secret not in text, f"{secret} leaked into {file.name}"
    for text in (stdout, stderr):
        assert ENV_SECRET not in text and CONFIG_SECRET not in text
    page = (run_dir / "report.html").read_text()
    assert TITLE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert TITLE not in (workspace / "reports" / "index.html").read_text()
    assert result(run_dir)["status"] == "completed"
