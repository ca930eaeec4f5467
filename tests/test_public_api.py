"""The exported surface stays small and deliberate."""

import importlib

import pytest

EXPECTED = {
    "aidrill": {"DrillError", "__version__"},
    "aidrill.measure": {
        "Bucket",
        "Event",
        "HealthRule",
        "LatencyHistogram",
        "judge_rto",
        "measure_recovery",
        "evaluate_run",
        "judge_validity",
        "ResultRecord",
        "ComponentRecord",
    },
    "aidrill.plan": {"Plan", "Component", "load_plan"},
    "aidrill.lab": {"LabClient", "start_lab", "stop_lab"},
    "aidrill.load": {"LoadGenerator", "LoadProfile"},
    "aidrill.run": {"run_experiment_file", "RunOutcome"},
    "aidrill.report": {"write_run_report", "write_index"},
    "aidrill.probes": {"probe_set_holds", "load_probe_set"},
    "aidrill.targets": {"Target", "Endpoints", "Activity", "target_for", "Heal"},
    "aidrill.targets.observer": {"TierObserver"},
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_exports_are_declared_and_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    assert EXPECTED[module_name] <= exported
    for name in exported:
        assert hasattr(module, name), f"{module_name}.{name} is in __all__ but missing"
    assert all(not name.startswith("_") or name == "__version__" for name in exported)


def test_measure_is_pure_and_imports_no_edge_stage() -> None:
    import ast
    from pathlib import Path

    package = Path(importlib.import_module("aidrill.measure").__file__).parent  # type: ignore[arg-type]
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(
                    ("aidrill.run", "aidrill.load", "aidrill.lab", "aidrill.report")
                ), f"{source.name} imports {node.module}"


def test_only_targets_and_the_cli_know_the_lab() -> None:
    """Run, probes, measurement, load and reports ask a target; the lab is one of them.
    Sub-packages import each other's public names, never a private module."""
    import ast
    from pathlib import Path

    package = Path(importlib.import_module("aidrill").__file__).parent  # type: ignore[arg-type]
    for source in package.rglob("*.py"):
        stage = source.relative_to(package).parts[0]
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            module = node.module
            # The pytest plugin is a front door like the CLI: it brings a lab up for tests.
            front = ("lab", "targets", "cli", "pytest_plugin.py")
            if module.startswith("aidrill.lab") and stage not in front:
                raise AssertionError(f"{source.relative_to(package)} imports {module}")
            parts = module.split(".")
            if len(parts) >= 3 and parts[0] == "aidrill" and parts[2].startswith("_"):
                assert parts[1] == stage, f"{source.relative_to(package)} imports {module}"
