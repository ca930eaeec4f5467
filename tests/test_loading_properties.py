"""Property tests: loading any plan or experiment yields a model or an InputError."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aidrill.errors import InputError, RefusedError
from aidrill.experiment import load_experiment
from aidrill.plan import load_plan

REPO = Path(__file__).resolve().parents[1]
PLAN = yaml.safe_load((REPO / "drplan.yaml").read_text())
EXPERIMENT = yaml.safe_load((REPO / "experiments" / "lab" / "gpu-node-loss.yaml").read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(-1e3, 1e3),
    st.text(max_size=12),
    st.sampled_from(["5m", "1h", "5 minutes", "-1s", "0"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(document: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    mutated = copy.deepcopy(document)
    parent = mutated
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return mutated


def _write(tmp: Path, name: str, document: Any) -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


common = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@common
@given(st.sampled_from(_paths(PLAN)), values, st.booleans())
def test_plan_loading_never_fails_unexpectedly(
    tmp_path: Path, path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    document = _mutate(PLAN, path, value, delete)
    try:
        load_plan(_write(tmp_path, "plan.yaml", document))
    except InputError as exc:
        assert exc.file is not None


@common
@given(st.sampled_from(_paths(EXPERIMENT)), values, st.booleans())
def test_experiment_loading_never_fails_unexpectedly(
    tmp_path: Path, path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    document = _mutate(EXPERIMENT, path, value, delete)
    plan = load_plan(REPO / "drplan.yaml")
    try:
        load_experiment(_write(tmp_path, "experiment.yaml", document), plan)
    except (InputError, RefusedError) as exc:
        assert exc.file is not None


@common
@given(values)
def test_any_yaml_document_as_a_plan(tmp_path: Path, document: Any) -> None:
    with contextlib.suppress(InputError):  # anything else fails the test
        load_plan(_write(tmp_path, "any.yaml", document))
