"""A kind of target shipped as its own package: aidrill finds it through the entry
point group ``aidrill.targets`` and drills it without a line of aidrill changed.

The third party here, ``acme_aidrill``, is a test double of a vendor's package: its
distribution metadata (``*.dist-info/entry_points.txt``) sits on the subprocess's
PYTHONPATH exactly as ``pip install`` would leave it, so the real
``importlib.metadata`` discovery finds it. Its target answers pre-flight, resolves
its own action against the plan, and counts the actions it was asked to take in a
file, so a test can prove nothing was injected.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from aidrill.kinds import target_kinds

REPO = Path(__file__).resolve().parents[1]

_KIND = '''
"""acme's target for aidrill (a vendor's package, as it would ship)."""
from aidrill.kinds import FaultScope, TargetKind


def check_plan(plan):
    section = plan.estates.get("acme")
    if section is None:
        return ["target acme: add estates.acme naming the tenant and its nodes"]
    return [] if section.get("nodes") else ["estates.acme.nodes: name at least one node"]


def driver_region(experiment, provider, plan):
    return (provider.get("arguments") or {}).get("region")


def make_target(plan, state_dir):
    from acme_aidrill.target import AcmeTarget  # the SDK-heavy part, loaded on use

    return AcmeTarget(plan)


KIND = TargetKind(
    name="acme",
    target=make_target,
    summary="acme cloud's GPU fleet",
    drivers={"acme_aidrill.actions.stop_node": FaultScope("gpu-nodes", True)},
    driver_modules=("acme_aidrill.",),
    driver_region=driver_region,
    check_plan=check_plan,
)
'''

_TARGET = """
from aidrill.targets import Admission, Heal, Resolved


class AcmeTarget:
    kind = "acme"

    def __init__(self, plan):
        self.plan = plan
        self.section = plan.estates["acme"]

    def problems(self):
        return [f"acme: tenant {self.section['tenant']}'s control plane does not answer"]

    def focus(self, tiers):
        pass

    def wait_nominal(self):
        return self.problems()

    def heal(self):
        return Heal(self.problems(), self.problems())

    def endpoints(self):
        raise NotImplementedError("never reached: pre-flight fails first")

    def ground_truth(self, since):
        return []

    def activities(self, since):
        return []

    def faults_left_behind(self):
        return []

    def clear_faults(self):
        return []

    def check_injection(self, *args, **kwargs):
        return None

    def run_check(self, check):
        return {"ok": False}

    def resolve(self, experiment):
        found = []
        for step in experiment.get("method", []):
            node = step.get("provider", {}).get("arguments", {}).get("node")
            if node is None:
                continue
            known = node in self.section["nodes"] or node in self.plan.allow.resources
            found.append(Resolved(
                action=step["name"], touches=f"acme node {node}", region="east",
                refused=None if known else f"acme node {node} is not in the plan",
                resources=(node,)))
        return found

    def admit(self, experiment):
        resolved = self.resolve(experiment)
        refusals = [r.refused for r in resolved if r.refused]
        return Admission(f"acme tenant {self.section['tenant']}", resolved, refusals)
"""

_ACTIONS = """
import os
from pathlib import Path


def stop_node(node: str, region: str) -> str:
    with Path(os.environ["ACME_CALLS"]).open("a") as calls:
        calls.write(node + "\\n")
    return node
"""


def _distribution(site: Path, value: str) -> None:
    info = site / "acme_aidrill-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-aidrill\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[aidrill.targets]\nacme = {value}\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder laid out as ``pip install acme-aidrill`` would leave site-packages."""
    site = tmp_path / "site"
    package = site / "acme_aidrill"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(_KIND))
    (package / "target.py").write_text(textwrap.dedent(_TARGET))
    (package / "actions.py").write_text(textwrap.dedent(_ACTIONS))
    _distribution(site, "acme_aidrill:KIND")
    return site


def _plan(folder: Path, target: str = "acme") -> Path:
    plan = yaml.safe_load((REPO / "drplan.example.yaml").read_text())
    for shipped in ("aws", "kubernetes", "suites"):
        plan.pop(shipped, None)
    plan["target"] = target
    plan["regions"] = [{"name": "east", "role": "primary"}, {"name": "west", "role": "dr"}]
    plan["allow"] = {"targets": [target]}
    plan["estates"] = {"acme": {"tenant": "t-42", "nodes": ["gpu-a", "gpu-b"]}}
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def _experiment(folder: Path, node: str) -> Path:
    action = {"type": "python", "module": "acme_aidrill.actions", "func": "stop_node"}
    action["arguments"] = {"node": node, "region": "east"}
    extension = {"name": "aidrill", "components": ["inference"], "target": "acme"}
    body = {
        "version": "1.0.0",
        "title": f"stop acme node {node}",
        "description": "a vendor's drill",
        "extensions": [{**extension, "test-type": "component"}],
        "steady-state-hypothesis": {"title": "nothing", "probes": []},
        "method": [{"type": "action", "name": f"stop-{node}", "provider": action}],
        "rollbacks": [],
    }
    path = folder / f"stop-{node}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _aidrill(folder: Path, site: Path | None, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIDRILL_", "AWS_"))}
    env["PYTHONPATH"] = str(site) if site is not None else ""
    env["ACME_CALLS"] = str(folder / "calls.txt")
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "aidrill", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = " ".join((done.stdout + done.stderr).split())  # rich wraps at any space
    assert "Traceback" not in output, output
    return done.returncode, output


def test_the_shipped_kinds_are_plug_ins_like_any_other() -> None:
    assert {"lab", "aws", "kubernetes"} <= set(target_kinds())
    assert target_kinds()["lab"].embedded and not target_kinds()["aws"].embedded


def test_a_third_party_target_is_validated_resolved_and_refused_by_its_own_rules(
    site: Path, tmp_path: Path
) -> None:
    plan = _plan(tmp_path)
    inside, outside = _experiment(tmp_path, "gpu-a"), _experiment(tmp_path, "gpu-z")
    code, output = _aidrill(tmp_path, site, "validate", "--plan", str(plan), str(plan),
                            str(inside))  # fmt: skip
    assert code == 0, output

    code, output = _aidrill(tmp_path, site, "run", "--no-live", "--dry-run", "--plan",
                            str(plan), str(inside))  # fmt: skip
    assert code == 0, output
    assert "acme tenant t-42" in output and "acme node gpu-a" in output, output

    code, output = _aidrill(tmp_path, site, "run", "--no-live", "--dry-run", "--plan",
                            str(plan), str(outside))  # fmt: skip
    assert code == 2, output
    assert "acme node gpu-z is not in the plan" in output, output
    assert not (tmp_path / "calls.txt").exists(), "a dry run called the vendor's action"

    # The kind's own plan check speaks through aidrill's plan validation.
    broken = yaml.safe_load(plan.read_text())
    broken["estates"]["acme"]["nodes"] = []
    plan.write_text(yaml.safe_dump(broken))
    code, output = _aidrill(tmp_path, site, "validate", str(plan))
    assert code == 2, output
    assert "estates.acme.nodes: name at least one node" in output, output


def test_a_real_run_against_a_third_party_target_stops_at_its_preflight(
    site: Path, tmp_path: Path
) -> None:
    plan = _plan(tmp_path)
    experiment = _experiment(tmp_path, "gpu-b")
    code, output = _aidrill(tmp_path, site, "run", "--no-live", "--plan", str(plan),
                            "--reports", str(tmp_path / "reports"), str(experiment))  # fmt: skip
    assert code == 3, output
    assert "tenant t-42's control plane does not answer" in output, output
    assert not (tmp_path / "calls.txt").exists(), "a fault was injected into a target not nominal"


def test_a_target_nobody_installed_is_one_clear_error(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    code, output = _aidrill(tmp_path, None, "validate", str(plan))
    assert code == 2, output
    installed = "installed: aws, endpoint, kubernetes, lab"
    assert f"no target 'acme' is installed ({installed})" in output, output
    assert "aidrill.targets" in output, output


def test_a_broken_plug_in_names_itself_and_breaks_no_other(site: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-site"
    _distribution(broken, "acme_aidrill_missing:KIND")
    code, output = _aidrill(tmp_path, broken, "validate", str(_plan(tmp_path)))
    assert code == 2, output
    assert "acme_aidrill_missing:KIND (from acme-aidrill) could not be loaded" in output, output

    lab_folder = tmp_path / "lab"
    lab_folder.mkdir()
    code, output = _aidrill(lab_folder, broken, "validate", str(REPO / "drplan.yaml"))
    assert code == 0, output


class _LedgerTarget:
    """A target whose fault ledger holds what a killed run left behind (the wire
    entries a ledger writes, some malformed as a hand-edited file would be)."""

    def __init__(self, entries: list[object]) -> None:
        from aidrill.targets import LeftFault

        self.left = [LeftFault.from_record(e) for e in entries if isinstance(e, dict)]
        self.cleared = False

    def faults_left_behind(self) -> list[object]:
        return [] if self.cleared else list(self.left)

    def clear_faults(self) -> list[object]:
        self.cleared = True
        return list(self.left)

    def ground_truth(self, since: float) -> list[object]:
        return []


def test_faults_left_behind_refuse_a_run_while_their_owner_lives_and_are_cleared_after() -> None:
    from aidrill.cli._runs import clear_faults_left_behind
    from aidrill.errors import RefusedError
    from aidrill.targets import LeftFault

    assert LeftFault.from_record({"kind": "kill-nodes", "owner": "not a mapping"}) == LeftFault(
        "kill-nodes", "unknown"
    )
    assert LeftFault.from_record({"kind": "x", "region": "a", "owner": {"pid": True}}).pid is None
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        entry = {"id": "f1", "kind": "fail-region", "region": "eu-west", "injected_at": 1.5,
                 "owner": {"run_id": "r-7", "pid": owner.pid}, "extra": [1]}  # fmt: skip
        assert LeftFault.from_record(entry).to_record() == {
            "kind": "fail-region", "region": "eu-west", "injected_at": 1.5,
            "owner": {"run_id": "r-7", "pid": owner.pid},
        }  # fmt: skip
        target = _LedgerTarget([entry, "garbage"])
        with pytest.raises(RefusedError) as refused:
            clear_faults_left_behind(target)  # type: ignore[arg-type]
        assert str(refused.value) == (
            f"run r-7 (pid {owner.pid}) still has fail-region active in eu-west; wait for it "
            "to finish"
        )
        assert not target.cleared
    finally:
        owner.kill()
        owner.wait()
    clear_faults_left_behind(target)  # type: ignore[arg-type]
    assert target.cleared, "its owner is gone: the fault is cleared before the next run"
