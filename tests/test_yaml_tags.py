"""YAML tags that safe loading refuses: one clear error naming file, line and column,
exit 2, never a traceback, for a plan, an experiment and a probe set alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from aidrill.cli.main import cli

from .conftest import PLAN

# One per family of tag the safe loader does not construct.
TAGS = {
    "python-object-apply": "!!python/object/apply:os.system ['touch /tmp/aidrill-owned']",
    "python-object": "!!python/object:collections.OrderedDict {}",
    "python-object-new": "!!python/object/new:builtins.dict {}",
    "python-name": "!!python/name:os.system",
    "python-module": "!!python/module:os",
    "python-tuple": "!!python/tuple [1, 2]",
    "local-tag": "!Ref SomethingElse",
    "include-tag": "!include other.yaml",
    "verbatim-tag": "!<tag:example.com,2026:thing> value",
}


@pytest.mark.parametrize("kind", ["plan", "experiment", "probe-set"])
@pytest.mark.parametrize("family", sorted(TAGS))
def test_a_tag_is_refused_with_file_line_and_column(tmp_path: Path, family: str, kind: str) -> None:
    document = {
        "plan": PLAN.read_text(),
        "experiment": (PLAN.parent / "experiments/lab/gpu-node-loss.yaml").read_text(),
        "probe-set": (PLAN.parent / "probes/lab-inference.yaml").read_text(),
    }[kind]
    lines = document.splitlines()
    at = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    lines.insert(at, f"tagged: {TAGS[family]}")
    path = tmp_path / f"{kind}.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["validate", "--plan", str(PLAN), str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), "no traceback, ever"
    assert "Traceback" not in result.output
    text = "".join(result.output.split())  # a long path wraps wherever the width falls
    assert re.search(rf"{re.escape(str(path))}:{at + 1}:\d+:refusedYAML", text), text
    assert not Path("/tmp/aidrill-owned").exists()


def test_run_refuses_a_tagged_experiment_before_anything_runs(tmp_path: Path) -> None:
    path = tmp_path / "tagged.yaml"
    path.write_text(f"title: x\ndescription: {TAGS['python-object-apply']}\n")
    result = CliRunner().invoke(cli, ["run", "--plan", str(PLAN), str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:2:14:refusedYAML" in "".join(result.output.split())
