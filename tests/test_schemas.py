"""result.json and manifest.json are typed records: the run and the report write them
through their records, read them back through them, and the JSON Schemas shipped for
auditors' tools are generated from the same records. An independent validator
(jsonschema) holds real files to the shipped schemas."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from aidrill.cli.main import cli
from aidrill.measure import ResultRecord
from aidrill.report import Quarter
from aidrill.schemas import SCHEMAS, render, shipped

from ._runs import synthetic_run
from .conftest import copy_shipped_files


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads(shipped(name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_shipped_schema_is_what_the_record_says(name: str) -> None:
    assert shipped(name).read_text(encoding="utf-8") == render(name), (
        f"{name} is stale: run `python -m aidrill.schemas`"
    )


def test_a_run_and_its_report_write_files_their_schemas_accept(tmp_path: Path) -> None:
    copy_shipped_files(tmp_path)
    runs = tmp_path / "reports" / "runs"
    started = time.time() - 900
    met = synthetic_run(runs, "met", started, outage=5.0, relapse=(38, 3))
    missed = synthetic_run(runs, "missed", started + 300, outage=40.0)
    results, manifests = _validator("result.schema.json"), _validator("manifest.schema.json")
    for run in (met, missed):
        document = json.loads((run / "result.json").read_text())
        assert list(results.iter_errors(document)) == [], run.name
        assert ResultRecord.parse(document).to_json() == document, "read back as written"
        assert list(manifests.iter_errors(json.loads((run / "manifest.json").read_text()))) == []
    measured = json.loads((met / "result.json").read_text())["components"]
    assert any(c["achieved"].get("relapses") for c in measured), "nested parts were held too"
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        quarter = str(Quarter.current())
        outcome = CliRunner().invoke(cli, ["report", "--quarter", quarter])
        assert outcome.exit_code in (0, 1), outcome.output
    finally:
        os.chdir(cwd)
    folder = tmp_path / "reports" / quarter
    document = json.loads((folder / "manifest.json").read_text())
    assert list(manifests.iter_errors(document)) == []
    assert len(document["runs"]) == 2, "the quarterly manifest chains both runs' seals"


def test_the_schemas_refuse_what_the_records_never_write(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "runs", "met", time.time() - 300, outage=3.0)
    document = json.loads((run / "result.json").read_text())
    results = _validator("result.schema.json")
    edits = {
        "a figure turned into a word": ("achieved", "rto_seconds", "fast"),
        "a verdict nobody writes": (None, "verdict", "passed"),
        "a key nobody writes": ("achieved", "rto_seconds_adjusted", 1.0),
    }
    for what, (inner, key, value) in edits.items():
        edited = json.loads(json.dumps(document))
        component = edited["components"][0]
        (component[inner] if inner else component)[key] = value
        assert list(results.iter_errors(edited)), f"the schema accepts {what}"
        with pytest.raises(ValueError, match=key):
            ResultRecord.parse(edited)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["files"][0]["sha256"] = "not a hash"
    assert list(_validator("manifest.schema.json").iter_errors(manifest))


def test_a_report_says_when_a_result_does_not_fit_its_schema(tmp_path: Path) -> None:
    copy_shipped_files(tmp_path)
    run = synthetic_run(tmp_path / "reports" / "runs", "met", time.time() - 300, outage=3.0)
    path = run / "result.json"
    document = json.loads(path.read_text())
    document["components"][0]["achieved"]["rto_seconds"] = "3 s"
    path.write_text(json.dumps(document))
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        quarter = str(Quarter.current())
        outcome = CliRunner().invoke(cli, ["report", "--quarter", quarter])
    finally:
        os.chdir(cwd)
    assert outcome.exit_code in (0, 1), outcome.output
    results = (tmp_path / "reports" / quarter / "results.json").read_text()
    assert "result.json does not fit its schema (aidrill.result/2)" in results
    assert "components.0.achieved.rto_seconds" in results
