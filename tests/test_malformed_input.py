"""A corpus of malformed plans, experiments and journals: one clear error each, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from aidrill.cli.main import cli

CORPUS = sorted((Path(__file__).parent / "corpus").iterdir())


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30
    assert {p.name.split("-")[0] for p in CORPUS} == {"plan", "exp", "journal"}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_validate_gives_one_clear_error_and_exit_code_two(path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    result = CliRunner().invoke(cli, ["validate", "--plan", str(repo / "drplan.yaml"), str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), "no traceback, ever"
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert str(path) in "".join(result.output.split()), "the message names the file"


def test_validate_reports_every_bad_file_and_keeps_going() -> None:
    bad = [str(p) for p in CORPUS[:3]]
    repo = Path(__file__).resolve().parents[1]
    good = str(repo / "drplan.yaml")
    result = CliRunner().invoke(cli, ["validate", *bad, good])
    assert result.exit_code == 2
    assert result.output.count("error:") == 3
    assert f"ok:{good}" in "".join(result.output.split())


def test_a_missing_plan_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "--plan", str(tmp_path / "nope.yaml"), "x.yaml"])
    assert result.exit_code == 2
    assert "nope.yaml:filenotfound" in "".join(result.output.split())
