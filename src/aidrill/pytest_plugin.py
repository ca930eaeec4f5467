"""aidrill as a pytest gate: ``pytest --aidrill EXPERIMENT|DIRECTORY|SUITE``.

Each experiment becomes a test item that runs the drill (under load, with its
rollbacks) and fails on a missed target, an invalid run, a deviation or an abort, with
the verdict sentences as the failure message and the run directory recorded as a user
property (pytest's ``--junitxml`` writes it). Lab drills run against the lab in
``--aidrill-state-dir``: a running one is used (reset before each drill), else one is
started for the session and stopped after it.

Fixtures for teams testing their own runbooks: ``aidrill_plan`` (the plan) and
``aidrill_lab`` (a lab up for the session, reset to nominal before each test).

Installed through the ``pytest11`` entry point; inert unless ``--aidrill`` is given or
one of its fixtures is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aidrill.errors import DrillError, LabNotRunningError
from aidrill.kinds import target_kind
from aidrill.lab import LabClient, start_lab, stop_lab
from aidrill.measure import ResultRecord
from aidrill.plan import Plan, load_plan

_EXPERIMENT_SUFFIXES = (".yaml", ".yml", ".json")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aidrill", "aidrill: DR drills as tests")
    group.addoption(
        "--aidrill",
        action="append",
        default=[],
        metavar="EXPERIMENT|DIRECTORY|SUITE",
        help="Run these drills as test items (repeatable): an experiment file, a folder "
        "of them, or the name of a suite of the plan.",
    )
    group.addoption(
        "--aidrill-plan", default="drplan.yaml", help="The DR plan (default: drplan.yaml)."
    )
    group.addoption(
        "--aidrill-state-dir",
        default=".aidrill/pytest",
        help="The lab's state directory: a lab running there is used, else one is started.",
    )
    group.addoption(
        "--aidrill-reports", default="reports", help="Where run directories go (runs/<id>/)."
    )


class _LabSession:
    """The session's lab: the one running in the state directory, or one started here
    (and stopped when the session ends)."""

    def __init__(self, config: pytest.Config) -> None:
        self.state_dir = Path(config.getoption("aidrill_state_dir"))
        self.plan_path = Path(config.getoption("aidrill_plan"))
        self.started = False
        self._client: LabClient | None = None

    def client(self) -> LabClient:
        if self._client is None:
            client = None
            with contextlib.suppress(LabNotRunningError):
                client = LabClient(self.state_dir)
                client.status()
            if client is None:
                client = start_lab(self.state_dir, self.plan_path)
                self.started = True
            self._client = client
        return self._client

    def close(self) -> None:
        if self.started:
            stop_lab(self.state_dir)
            self.started = False


_LAB = pytest.StashKey[_LabSession]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_LAB] = _LabSession(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_LAB, None)
    if session is not None:
        session.close()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``--aidrill`` and no paths given, only the drills are collected."""
    if config.getoption("aidrill") and config.args_source != pytest.Config.ArgsSource.ARGS:
        return True
    return None


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    wanted = config.getoption("aidrill")
    if not wanted:
        return
    plan_path = Path(config.getoption("aidrill_plan"))
    for path in _experiment_paths(wanted, plan_path):
        items.append(DrillItem.from_parent(session, name=str(path), experiment=path))


def _experiment_paths(wanted: list[str], plan_path: Path) -> list[Path]:
    paths: list[Path] = []
    for entry in wanted:
        path = Path(entry)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.suffix in _EXPERIMENT_SUFFIXES)
        elif path.exists():
            paths.append(path)
        else:
            plan = load_plan(plan_path)
            if entry not in plan.suites:
                known = ", ".join(sorted(plan.suites)) or "none"
                raise pytest.UsageError(
                    f"--aidrill {entry}: no such file, folder or suite of {plan_path} "
                    f"(its suites: {known})"
                )
            paths += [plan_path.parent / p for p in plan.suites[entry]]
    return paths


class DrillFailed(DrillError):
    """A drill that missed a target, was invalid, deviated or was aborted."""


class DrillItem(pytest.Item):
    def __init__(self, *, experiment: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.experiment = experiment

    def runtest(self) -> None:
        from aidrill.experiment import load_experiment
        from aidrill.run import run_experiment_file

        plan_path = Path(self.config.getoption("aidrill_plan"))
        plan = load_plan(plan_path)
        loaded = load_experiment(self.experiment, plan)
        state_dir = None
        if loaded.extension is not None and target_kind(loaded.extension.target).embedded:
            lab = self.config.stash[_LAB].client()
            lab.reset()
            state_dir = lab.state_dir
        reports = Path(self.config.getoption("aidrill_reports"))
        outcome = run_experiment_file(loaded, plan_path, reports, state_dir, heal=True)
        self.user_properties.append(("run_dir", str(outcome.run_dir)))
        if outcome.exit_code != 0:
            raise DrillFailed(_failure(outcome.result, outcome.run_dir, outcome.status))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, DrillError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.experiment, None, f"aidrill drill {self.experiment}"


def _failure(result: ResultRecord | None, run_dir: Path, status: str) -> str:
    if result is None:
        return f"drill {status}, INVALID: no readable result\n  evidence: {run_dir}"
    lines = [f"drill {status}" + ("" if result.valid else ", INVALID")]
    for reason in result.invalid_reasons:
        lines.append(f"  invalid: {reason.reason}")
    for component in result.components:
        lines.append(f"  {component.name}: {component.verdict} — {component.explanation}")
    lines.append(f"  evidence: {run_dir}")
    return "\n".join(lines)


@pytest.fixture(scope="session")
def aidrill_plan(pytestconfig: pytest.Config) -> Plan:
    """The DR plan given by ``--aidrill-plan``."""
    return load_plan(Path(pytestconfig.getoption("aidrill_plan")))


@pytest.fixture
def aidrill_lab(pytestconfig: pytest.Config) -> Iterator[LabClient]:
    """The session's lab, reset to nominal before each test (and after it)."""
    lab = pytestconfig.stash[_LAB].client()
    if not lab.reset()["restored"]:
        pytest.fail(f"the lab in {lab.state_dir} could not be reset to nominal: {lab.problems()}")
    yield lab
    lab.reset()
