"""Governance around the measurements (issue 25): where targets come from, who tested
and how independent they were, third parties, decided actions with a person as owner,
the next test dates, the management review, and the control map, in every format."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from aidrill.cli.main import cli
from aidrill.report import Quarter

from ._runs import synthetic_run
from .conftest import PLAN

QUARTER = Quarter.current()
START = QUARTER.start.timestamp() + 3600
CLAUSES = [
    "SOC 2 A1.3",
    "ISO 22301:2019 8.5",
    "NIST SP 800-53 CP-4",
    "NIST SP 800-53 CP-4(1)",
    "NIST SP 800-53 CP-4(2)",
    "NIST SP 800-53 CP-4(3)",
    "NIST SP 800-53 CP-4(4)",
    "NIST SP 800-53 CP-4(5)",
    "DORA (EU) 2022/2554 Art. 24",
    "DORA (EU) 2022/2554 Art. 25",
    "RTS (EU) 2024/1774 Art. 25",
]
EVERYWHERE = ("Control map", "CP-4(2)", "RTS (EU) 2024/1774", "Lee Park (CTO)",
              "Dana Reyes (Head of SRE)", "BIA-2026-03 rev 2", "Acme GPU Cloud")  # fmt: skip
GOVERNANCE = {
    "bia": "BIA-2026-03 rev 2",
    "test-plan": {"by": "Dana Reyes", "role": "Head of SRE", "at": "2026-09-30",
                  "reference": "DR test plan 2026-H2"},
    "third-parties": [
        {"name": "Acme GPU Cloud", "provides": "GPU capacity in both regions",
         "participated": True, "how": "on the bridge during the failover"},
        {"name": "VectorCo", "provides": "managed vector index"},
    ],
    "management-review": {"by": "Lee Park", "role": "CTO", "at": "2026-12-01",
                          "decision": "accept; fund a warm DR pool"},
}  # fmt: skip


def _report(tmp_path: Path, governance: dict[str, Any] | None, decide: bool) -> Path:
    runs = tmp_path / "reports" / "runs"
    people = [{"name": "Ada Lovelace", "role": "incident commander", "independent": False},
              {"name": "Grace Hopper", "role": "observer", "independent": True}]  # fmt: skip
    synthetic_run(runs, "gpu-node-loss", START, outage=5, participants=people)
    missed = synthetic_run(runs, "gpu-node-loss-missed", START + 100, outage=45)
    synthetic_run(runs, "region-failover", START + 200, outage=4,
                  experiment="region-failover.yaml", participants=people[:1])  # fmt: skip
    plan = yaml.safe_load(PLAN.read_text())
    if governance is not None:
        plan["governance"] = governance
        plan["components"][0]["bia"] = "BIA-2026-03 §4.1 (checkout scoring)"
    (tmp_path / "drplan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    if decide:
        findings = {"kind": "findings", "decisions": [{
            "finding": f"RUN-{missed.name}-inference", "action": "add a warm GPU pool in DR",
            "owner": "Ada Lovelace", "due": "2027-01-15", "decided": "2026-12-02",
            "retest_run": missed.name,  # a retest that did not pass: stays open
        }]}  # fmt: skip
        (tmp_path / "findings.yaml").write_text(yaml.safe_dump(findings))
    made = CliRunner().invoke(cli, ["report", "--quarter", str(QUARTER)])
    assert made.exit_code == 0, made.output
    return tmp_path / "reports" / str(QUARTER)


@pytest.fixture
def governed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return _report(tmp_path, GOVERNANCE, decide=True)


def _controls(folder: Path) -> dict[str, dict[str, Any]]:
    results = json.loads((folder / "results.json").read_text())
    return {f"{c['framework']} {c['clause']}": c for c in results["governance"]["controls"]}


def test_the_control_map_names_every_clause_with_evidence_or_not_covered(governed: Path) -> None:
    controls = _controls(governed)
    assert list(controls) == CLAUSES
    for name, row in controls.items():
        assert row["coverage"] in ("covered", "partly covered", "not covered"), name
        assert row["evidence"] or row["coverage"] == "not covered", name
    assert controls["NIST SP 800-53 CP-4(1)"]["coverage"] == "not covered"
    failover = controls["NIST SP 800-53 CP-4(2)"]
    assert failover["coverage"] == "covered"
    assert failover["evidence"] == ["failover to the DR region lab-west in 1 valid run(s)"]
    soc2 = controls["SOC 2 A1.3"]
    assert "3 valid drill(s)" in soc2["evidence"][0] and "1 missed" in soc2["evidence"][0]
    assert any("never drilled this quarter" in gap for gap in soc2["gaps"])
    rts = controls["RTS (EU) 2024/1774 Art. 25"]
    assert "third parties taking part: Acme GPU Cloud" in rts["evidence"]
    assert "third parties that did not take part: VectorCo" in rts["gaps"]
    dora = controls["DORA (EU) 2022/2554 Art. 24"]
    assert "1 of 3 valid drill(s) had an independent participant" in dora["evidence"]
    assert any("Dana Reyes (Head of SRE)" in line for line in dora["evidence"])


def test_without_governance_the_same_clauses_say_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    controls = _controls(_report(tmp_path, None, decide=False))
    assert list(controls) == CLAUSES
    iso = controls["ISO 22301:2019 8.5"]
    assert iso["coverage"] == "partly covered"
    for gap in ("the plan names no business-impact analysis",
                "no management review recorded in the plan"):  # fmt: skip
        assert gap in iso["gaps"]
    assert "no test-plan approval recorded in the plan" in controls[CLAUSES[8]]["gaps"]
    rts = controls["RTS (EU) 2024/1774 Art. 25"]
    assert "the plan names no third-party providers" in rts["gaps"]


def test_decisions_independence_next_dates_and_review_reach_every_format(governed: Path) -> None:
    results = json.loads((governed / "results.json").read_text())
    governance = results["governance"]
    assert governance["runs_with_independent"] == 1 and governance["runs_counted"] == 3
    people = {p["name"]: p for p in governance["people"]}
    assert people["Grace Hopper"]["independent"] and not people["Ada Lovelace"]["independent"]
    decided = next(f for f in results["findings"] if f["id"].startswith("RUN-"))
    assert decided["owner"] == "Ada Lovelace" and decided["action"] == "add a warm GPU pool in DR"
    assert decided["due"] == "2027-01-15" and decided["decided"] == "2026-12-02"
    assert decided["status"] == "open", "its named retest did not pass"
    assert governance["decided_findings"] == 1, "aidrill's own suggestions are not decisions"
    assert decided["retest"].startswith("retest ") and "has not passed" in decided["retest"]
    chaos = next(row for row in results["cadence"] if row["type"] == "chaos")
    last = chaos["last_held"]
    assert last and chaos["next_due"] > last, chaos
    tabletop = next(row for row in results["cadence"] if row["type"] == "tabletop")
    assert tabletop["next_due"].startswith("overdue: none held")
    assert results["components"][0]["bia"] == "BIA-2026-03 §4.1 (checkout scoring)"
    html = (governed / "index.html").read_text()
    markdown = (governed / "summary.md").read_text()
    pdf = subprocess.run(["pdftotext", str(governed / "report.pdf"), "-"],
                         check=True, capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    flat_pdf = " ".join(pdf.split())
    for text in (html, markdown, flat_pdf):
        for expected in EVERYWHERE:
            assert expected in text, expected
    for text in (html, flat_pdf):
        assert "Grace Hopper" in text and "decided 2026-12-02" in text
        assert f"{last} · {chaos['next_due']}" in text
