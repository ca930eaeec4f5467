"""The thin CLI commands, through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from aidrill.cli.main import cli

from .conftest import REPO


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_validate_tells_each_kind_from_content(runner: CliRunner, workspace: Path) -> None:
    result = runner.invoke(
        cli,
        [
            "validate",
            "drplan.yaml",
            "experiments/lab/gpu-node-loss.yaml",
            "probes/lab-inference.yaml",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(plan)" in result.output and "(experiment)" in result.output
    assert "(probe set)" in result.output


def test_validate_rejects_unknown_component_with_file_line_field(
    runner: CliRunner, workspace: Path
) -> None:
    path = workspace / "experiments" / "lab" / "gpu-node-loss.yaml"
    path.write_text(
        path.read_text().replace("components: [inference]", "components: [inference, search-cache]")
    )
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert "unknown component 'search-cache'" in result.output
    assert f"{path}:" in result.output and "extensions.aidrill.components" in result.output
    assert "Traceback" not in result.output


def test_validate_rejects_a_bad_duration_in_the_extension(
    runner: CliRunner, workspace: Path
) -> None:
    path = workspace / "experiments" / "lab" / "region-failover.yaml"
    path.write_text(path.read_text().replace("max-duration: 3m", "max-duration: 3 minutes"))
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert "extensions.0.max-duration" in result.output and "duration" in result.output


def test_validate_rejects_an_experiment_chaoslib_would_refuse(
    runner: CliRunner, workspace: Path
) -> None:
    path = workspace / "broken.yaml"
    path.write_text("title: t\ndescription: d\nmethod:\n  - type: action\n    name: x\n")
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert "broken.yaml" in result.output and "provider" in result.output


def test_run_refuses_before_touching_anything_when_an_experiment_is_bad(
    runner: CliRunner, workspace: Path
) -> None:
    (workspace / "bad.yaml").write_text("title: [unclosed\n")
    result = runner.invoke(cli, ["run", "experiments/lab/gpu-node-loss.yaml", "bad.yaml"])
    assert result.exit_code == 2
    assert "malformed YAML" in result.output
    assert not (workspace / "reports").exists(), "nothing was run or written"


def test_run_without_a_lab_says_how_to_start_one(
    runner: CliRunner, workspace: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        cli, ["run", "--state-dir", str(tmp_path / "none"), "experiments/lab/gpu-node-loss.yaml"]
    )
    assert result.exit_code == 1
    assert "aidrill lab up" in result.output


@pytest.mark.starts_lab
def test_lab_commands_up_status_reset_down(runner: CliRunner, tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    plan = str(REPO / "drplan.yaml")
    refused = runner.invoke(cli, ["lab", "up", "--state-dir", state, "--twins", "gcp"])
    assert refused.exit_code == 2 and "unknown twin gcp" in refused.output
    try:
        up = runner.invoke(cli, ["lab", "up", "--state-dir", state, "--plan", plan])
        assert up.exit_code == 0, up.output
        assert "lab up in" in up.output
        status = runner.invoke(cli, ["lab", "status", "--state-dir", state])
        assert "lab-east: 4/4 healthy GPU nodes" in status.output
        # Twins start only when asked for; the status says how to get one.
        assert "aidrill lab up --twins aws" in " ".join(status.output.split())
        env = runner.invoke(cli, ["lab", "status", "--env", "--state-dir", state])
        assert env.exit_code != 0 and "without its aws twin" in " ".join(env.output.split())
        reset = runner.invoke(cli, ["lab", "reset", "--state-dir", state])
        assert "lab restored" in reset.output
    finally:
        down = runner.invoke(cli, ["lab", "down", "--state-dir", state])
    assert "lab stopped" in down.output
    again = runner.invoke(cli, ["lab", "down", "--state-dir", state])
    assert "no lab was running" in again.output


def test_drill_names_the_plans_suites_when_one_is_unknown(
    runner: CliRunner, workspace: Path
) -> None:
    result = runner.invoke(cli, ["drill", "--suite", "nightly"])
    assert result.exit_code == 2
    assert "no suite 'nightly' (its suites: gameday, lab)" in result.output
