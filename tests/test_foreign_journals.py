"""Foreign Chaos Toolkit journals never crash the report: every provider shape Chaos
Toolkit accepts, and many it does not, is read, counted or named as unreadable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aidrill.cli.main import cli

from .conftest import PLAN

# The shape of a real public journal: a process action with its arguments as a string.
DOCKER_JOURNAL: dict[str, Any] = {
    "chaoslib-version": "1.42.0",
    "platform": "Linux",
    "experiment": {
        "version": "1.0.0",
        "title": "Redis goes away and comes back",
        "description": "Stop the redis container and check the app survives",
        "method": [
            {
                "type": "action",
                "name": "stop-redis",
                "provider": {"type": "process", "path": "docker", "arguments": "stop redis"},
            }
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "start-redis",
                "provider": {"type": "process", "path": "docker", "arguments": ["start", "redis"]},
            }
        ],
    },
    "start": "2026-11-20T09:00:00.000000+00:00",
    "end": "2026-11-20T09:00:12.000000+00:00",
    "status": "completed",
    "deviated": False,
    "steady_states": {"before": None, "after": None, "during": []},
    "run": [
        {
            "activity": {
                "type": "action",
                "name": "stop-redis",
                "provider": {"type": "process", "path": "docker", "arguments": "stop redis"},
            },
            "output": {"status": 0, "stdout": "redis\n", "stderr": ""},
            "status": "succeeded",
            "start": "2026-11-20T09:00:01.000000+00:00",
            "end": "2026-11-20T09:00:02.000000+00:00",
            "duration": 1.0,
        }
    ],
    "rollbacks": [],
}


def _report(runs: Path, out: Path, *extra: str) -> Any:
    return CliRunner().invoke(
        cli,
        ["report", "--plan", str(PLAN), "--runs", str(runs), "--out", str(out),
         "--quarter", "2026-Q4", "--format", "json,md,junit,html", *extra],
    )  # fmt: skip


def test_a_process_action_with_string_arguments_is_counted(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "docker-redis.json").write_text(json.dumps(DOCKER_JOURNAL))
    result = _report(runs, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "2026-Q4: 1 run(s)" in result.output
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["experiment"] for r in report["runs"]] == ["Redis goes away and comes back"]
    assert report["runs"][0]["kind"] == "plain"


def test_runs_takes_a_journal_file_too(tmp_path: Path) -> None:
    journal = tmp_path / "one-journal.json"
    journal.write_text(json.dumps(DOCKER_JOURNAL))
    result = _report(journal, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "2026-Q4: 1 run(s)" in result.output


def test_runs_that_hold_nothing_readable_is_an_error_naming_the_path(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("not a run")
    (tmp_path / "not-a-journal.json").write_text('{"hello": "world"}')
    for path in (notes, tmp_path / "missing", notes / "notes.txt", tmp_path / "not-a-journal.json"):
        result = _report(path, tmp_path / "out")
        assert result.exit_code == 2, (path, result.output)
        assert isinstance(result.exception, SystemExit)
        assert str(path) in "".join(result.output.split())


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=12), st.floats(allow_nan=False)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _maybe(key: str, value: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``{key: value}``, ``{key: None}`` or nothing at all."""
    return st.one_of(st.just({}), st.just({key: None}), value.map(lambda v: {key: v}))


_arguments = st.one_of(
    st.text(max_size=20),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(max_size=8), _values, max_size=3),
    _values,
)
_MODULES = ["chaosaws.ec2.actions", "os.path", "chaosk8s.pod.actions", "x"]
_provider = st.builds(
    lambda kind, extra: {"type": kind, **extra},
    st.sampled_from(["python", "process", "http", "unknown", None]),
    st.builds(
        lambda *parts: {k: v for part in parts for k, v in part.items()},
        _maybe(
            "module",
            st.sampled_from(["chaosaws.ec2.actions", "os.path", "chaosk8s.pod.actions", "x"]),
        ),
        _maybe("func", st.sampled_from(["stop_instances", "join", "terminate_pods", "f"])),
        _maybe("path", st.text(max_size=10)),
        _maybe("url", st.text(max_size=20)),
        _maybe("arguments", _arguments),
        _maybe("secrets", _values),
    ),
)
_activity = st.builds(
    lambda kind, name, provider, extra: {"type": kind, **name, **provider, **extra},
    st.sampled_from(["action", "probe", None, "other"]),
    _maybe("name", st.one_of(st.text(max_size=12), _values)),
    _maybe("provider", st.one_of(_provider, _values)),
    _maybe(
        "pauses", st.one_of(st.dictionaries(st.sampled_from(["before", "after"]), _values), _values)
    ),
)
_record = st.builds(
    lambda activity, status, output: {
        "activity": activity, "status": status, "output": output,
        "start": "2026-11-20T09:00:01+00:00", "end": "2026-11-20T09:00:02+00:00",
    },
    _activity,
    st.sampled_from(["succeeded", "failed", "skipped"]),
    _values,
)  # fmt: skip
_journal = st.builds(
    lambda title, method, rollbacks, extensions, run, status: {
        "chaoslib-version": "1.44.0",
        "experiment": {"title": title, "description": "d", "method": method,
                       "rollbacks": rollbacks, **extensions},
        "start": "2026-11-20T09:00:00+00:00", "end": "2026-11-20T09:01:00+00:00",
        "status": status, "deviated": False, "run": run, "rollbacks": [],
    },
    st.text(min_size=1, max_size=20),
    st.one_of(st.lists(_activity, max_size=4), _values),
    st.one_of(st.lists(_activity, max_size=2), _values),
    _maybe("extensions", st.one_of(_values, st.just([{"name": "aidrill", "components": 5}]))),
    st.lists(_record, max_size=3),
    st.sampled_from(["completed", "failed", "aborted", "interrupted"]),
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(journals=st.lists(_journal, min_size=1, max_size=3))
def test_any_journal_shape_is_counted_or_named_never_a_crash(
    tmp_path_factory: Any, journals: list[dict[str, Any]]
) -> None:
    root = tmp_path_factory.mktemp("foreign")
    runs = root / "runs"
    runs.mkdir()
    for number, journal in enumerate(journals):
        (runs / f"journal-{number}.json").write_text(json.dumps(journal))
    result = _report(runs, root / "out")
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads((root / "out" / "results.json").read_text())
    assert len(report["runs"]) == len(journals), "each is counted or named unreadable"


def test_an_empty_runs_folder_is_a_quarter_with_no_runs_said_out_loud(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    result = _report(tmp_path / "runs", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "holds no runs yet" in " ".join(result.output.split())
