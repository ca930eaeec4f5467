from pathlib import Path

import pytest

from aidrill.errors import PlanError
from aidrill.plan import load_plan

REPO = Path(__file__).resolve().parents[1]


def test_shipped_lab_plan_loads() -> None:
    plan = load_plan(REPO / "drplan.yaml")
    assert plan.primary_region == "lab-east"
    assert plan.dr_region == "lab-west"
    assert plan.component("inference") is not None


def test_example_plan_carries_production_targets() -> None:
    plan = load_plan(REPO / "drplan.example.yaml")
    targets = {c.tier: (c.rto, c.rpo) for c in plan.components}
    assert targets["inference"] == (300, None)
    assert targets["feature-store"] == (900, 300)
    assert targets["vector-index"] == (1800, 3600)
    assert targets["training"] == (4 * 3600, 24 * 3600)
    assert targets["evaluation"] == (4 * 3600, 24 * 3600)
    assert all(c.rationale for c in plan.components)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


GOOD = """\
system: s
regions:
  - {name: a, role: primary}
  - {name: b, role: dr}
slo: {success_ratio: 0.9, p95_latency: 1s, quality_floor: 0.5}
components:
  - name: inference
    tier: inference
    rto: RTO
    rationale: users
"""


def test_bad_duration_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("RTO", "5 minutes"))
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    error = caught.value
    assert error.file == str(path)
    assert error.line == 9
    assert error.field == "components.0.rto"
    assert "duration" in str(error)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("RTO", "5m") + "colour: blue\n")
    with pytest.raises(PlanError, match="unknown key") as caught:
        load_plan(path)
    assert caught.value.field == "colour"
    assert caught.value.line == 11


def test_stateless_inference_cannot_have_rpo(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("RTO", "5m") + "    rpo: 1m\n")
    with pytest.raises(PlanError, match="stateless"):
        load_plan(path)


def test_missing_plan_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="not found"):
        load_plan(tmp_path / "nope.yaml")


def test_malformed_yaml_gives_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "system: s\nregions: [\n  - a\n")
    with pytest.raises(PlanError, match="malformed YAML") as caught:
        load_plan(path)
    assert caught.value.line is not None


def test_a_kubernetes_plan_names_a_cluster_for_every_region(tmp_path: Path) -> None:
    example = (REPO / "drplan.example.yaml").read_text()
    plan = load_plan(_write(tmp_path, example.replace("target: aws", "target: kubernetes")))
    assert plan.kubernetes is not None
    east = plan.kubernetes.regions["us-east-1"]
    assert (east.context, east.namespace, east.replicas) == ("prod-us-east-1", "recommendations", 8)
    assert plan.kubernetes.gpu_label == "nvidia.com/gpu.present=true"
    target = GOOD.replace("RTO", "5m") + "target: kubernetes\n"
    with pytest.raises(PlanError, match="add a kubernetes section"):
        load_plan(_write(tmp_path, target))
    one_cluster = target + "kubernetes:\n  inference: http://x\n  golden-set: g.json\n"
    one_cluster += "  regions:\n    a: {context: ctx-a}\n"
    with pytest.raises(PlanError, match=r"no cluster for the plan's regions \['b'\]"):
        load_plan(_write(tmp_path, one_cluster))


def test_a_plan_read_again_unchanged_is_not_parsed_again_and_never_shared(
    tmp_path: Path,
) -> None:
    import shutil

    from aidrill.plan import _load

    path = tmp_path / "drplan.yaml"
    shutil.copy(REPO / "drplan.yaml", path)
    first = load_plan(path)
    first.components.clear()  # a caller's change to its copy reaches no other caller
    second = load_plan(path)
    assert second.components and second is not first
    assert any(key[0] == str(path.resolve()) for key in _load._LOADED)
    path.write_text(path.read_text().replace("system: ", "system: Changed ", 1))
    assert load_plan(path).system.startswith("Changed "), "an edited plan is read again"
