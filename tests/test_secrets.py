"""Secrets never reach a copy of the experiment, a journal, events, logs or the page."""

from __future__ import annotations

import os
from pathlib import Path

from aidrill._redact import REDACTED, collect_secret_values, redact

from ._drill import (
    CONFIG_SECRET,
    ENV_SECRET,
    LITERAL_SECRET,
    SECRET_ENV_VAR,
    SECRET_VALUES,
    result,
    run_dir_of,
    start_run,
    write_secretive_experiment,
)

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
    # The rates of generated tokens are figures; a key naming a token is a secret.
    figures = {"slo": {"min_tokens_per_second": 20, "token_seconds": 1.5},
               "protocol": {"max-tokens": 16, "max_tokens": 16},
               "auth_token": "abcd-1234", "tokens": ["t-1"]}  # fmt: skip
    masked = redact(figures, set())
    assert masked["slo"] == figures["slo"] and masked["protocol"] == figures["protocol"]
    assert masked["auth_token"] == REDACTED and masked["tokens"] == [REDACTED]


def test_a_run_with_secrets_leaks_none_of_them(workspace, lab) -> None:  # type: ignore[no-untyped-def]
    name = write_secretive_experiment(workspace, "secretive.yaml", fault_pause=3, title=TITLE)
    os.environ[SECRET_ENV_VAR] = ENV_SECRET
    try:
        process = start_run(workspace, lab, name)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        del os.environ[SECRET_ENV_VAR]
    run_dir = run_dir_of(workspace)
    journal = (run_dir / "journal.json").read_text()
    assert journal.count(REDACTED) >= 3, "the probes' outputs were there, and redacted"
    outputs: list[Path] = [*run_dir.iterdir(), workspace / "reports" / "index.html"]
    for file in outputs:
        text = file.read_text(errors="replace")
        for secret in SECRET_VALUES:
            assert secret not in text, f"{secret} leaked into {file.name}"
    for text in (stdout, stderr):
        assert ENV_SECRET not in text and CONFIG_SECRET not in text
    page = (run_dir / "report.html").read_text()
    assert TITLE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert TITLE not in (workspace / "reports" / "index.html").read_text()
    assert result(run_dir)["status"] == "completed"
