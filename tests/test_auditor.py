"""What an auditor needs before signing: honest worst cases, provable verdicts,
deviations that count, people and sign-off, signed evidence, a usable PDF."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from aidrill.cli.main import cli
from aidrill.experiment import load_experiment
from aidrill.plan import load_plan
from aidrill.report import Quarter

from ._checklist import checklist, missing_from_formats, stranded_headings
from ._runs import synthetic_run
from .conftest import PLAN, REPO

QUARTER = Quarter.current()
START = QUARTER.start.timestamp() + 3600


@pytest.fixture
def report_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A quarter of synthetic runs: one recovered (and relapsed), one never recovered, one that
    deviated after the method, one invalid; and its report, signed and signed off."""
    runs = tmp_path / "reports" / "runs"
    synthetic_run(runs, "gpu-node-loss", START, outage=5, relapse=(38, 3))
    synthetic_run(runs, "gpu-node-loss-never-back", START + 100, outage=45)
    deviated = synthetic_run(runs, "gpu-node-loss-deviated", START + 200, outage=4)
    _make_deviated(deviated)
    synthetic_run(runs, "gpu-node-loss-invalid", START + 300, fault_ok=False)
    (tmp_path / "drplan.yaml").write_text(PLAN.read_text())
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["keygen", "keys/team.key"]).exit_code == 0
    made = runner.invoke(cli, ["report", "--quarter", str(QUARTER), "--sign-key", "keys/team.key"])
    assert made.exit_code == 0, made.output
    return tmp_path / "reports" / str(QUARTER)


def _make_deviated(run_dir: Path) -> None:
    """Rewrite a synthetic run as one whose steady state failed after the method."""
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    t_after = events[0]["time"] + 45
    events.append({"time": t_after, "kind": "phase", "phase": "steady-state-after"})
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    failing = {"check": "data-tiers-whole", "holds": False,
               "problems": ["replication backlog 31s"]}  # fmt: skip
    record = {"time": t_after + 1, "probe_set": "lab-system", "holds": False, "checks": [failing]}
    (run_dir / "probes.jsonl").write_text(json.dumps(record) + "\n")
    for name in ("result.json", "report.html"):
        (run_dir / name).unlink()
    from aidrill._signing import seal_run
    from aidrill.run._results import write_run_page, write_run_result

    write_run_result(run_dir, "completed", True)
    write_run_page(run_dir)
    seal_run(run_dir)  # the run as it would have ended: sealed with what it wrote


def test_the_worst_case_is_the_run_that_never_recovered_in_every_format(
    report_folder: Path,
) -> None:
    results = json.loads((report_folder / "results.json").read_text())
    inference = next(c for c in results["components"] if c["name"] == "inference")
    assert inference["worst_rto"] is None and inference["not_recovered"] == 1
    assert inference["worst_rto_text"] == "> 30.0 s, not recovered"
    assert "&gt; 30.0 s, not recovered" in (report_folder / "index.html").read_text()
    summary = (report_folder / "summary.md").read_text()
    # Markdown that reads as written and renders the character (a CommonMark escape).
    assert "| \\> 30.0 s, not recovered | 1 |" in summary and "&gt;" not in summary
    assert "Not recovered" in summary
    junit = ET.parse(report_folder / "junit.xml").getroot()
    never = next(s for s in junit.iter("testsuite") if "never-back" in str(s.get("name")))
    assert never.get("timestamp"), "each run's suite says when it ran"
    case = next(c for c in never.iter("testcase") if c.get("name") == "inference RTO target")
    figures = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert figures["target_rto_seconds"] == "20.0" and figures["verdict"] == "missed", figures
    assert figures["achieved_rto_seconds"].startswith("not recovered within 30"), figures


def test_episodes_count_toward_the_worst_case() -> None:
    from aidrill.measure import Achieved, ComponentRecord, Episode
    from aidrill.report._quarterly import worst_rto

    def episode(rto: float) -> Episode:
        return Episode(fault="kill", injected_at=None, impact=True, rto_seconds=rto,
                       recovered=True, observation_window_seconds=20.0,
                       provable_until_seconds=10.0)  # fmt: skip

    record = ComponentRecord(
        name="inference", tier="inference", rationale=None, verdict="met", explanation="",
        rto_verdict="met", rpo_verdict=None, cause=None, degradation=None,
        target={"rto_seconds": 20.0, "rpo_seconds": None},
        achieved=Achieved(rto_seconds=2.9, resolution_seconds=1.0,
                          episodes=[episode(2.9), episode(6.8)]),
    )  # fmt: skip
    worst = worst_rto([record])
    assert worst.worst_rto == 6.8 and worst.worst_rto_text == "6.8 s (1 s buckets)"


def test_the_shipped_failing_failover_drill_can_prove_its_miss() -> None:
    plan = load_plan(PLAN)
    experiment = load_experiment(REPO / "experiments/lab/region-failover-no-gpu-capacity.yaml")
    window = experiment.raw["method"][-1]["pauses"]["after"]
    inference = plan.component("inference")
    assert inference is not None
    assert window >= inference.rto + plan.slo.sustain, "missed needs target + sustain"


def test_every_shipped_drill_carries_guardrails() -> None:
    for path in sorted((REPO / "experiments/lab").glob("*.yaml")):
        extension = load_experiment(path).extension
        assert extension is not None and extension.guardrails is not None, path.name
        guard = extension.guardrails
        assert guard.max_error_ratio is not None and guard.max_p95_latency is not None


def test_a_region_fault_reports_the_whole_region_as_its_blast_radius(report_folder: Path) -> None:
    from aidrill.experiment import describe_fault, planned_faults

    raw = yaml.safe_load((REPO / "experiments/lab/region-failover.yaml").read_text())
    (fault,) = list(planned_faults(raw))
    text = describe_fault(fault, load_plan(PLAN))  # type: ignore[arg-type]
    assert "all of lab-east: its GPU nodes, its load balancer and every data tier" in text
    page = (report_folder / "index.html").read_text()
    assert "50% (2 of 4) of lab-east&#39;s GPU nodes" in page
    assert "both regions at once refused (full-outage not declared)" in page


def test_a_deviation_is_named_with_its_figure_raised_and_fails_the_gate(
    report_folder: Path,
) -> None:
    results = json.loads((report_folder / "results.json").read_text())
    run = next(r for r in results["runs"] if r["run_id"].endswith("gpu-node-loss-deviated"))
    assert any("data-tiers-whole did not hold after the method" in d for d in run["deviations"])
    assert any("replication backlog 31s" in d for d in run["deviations"])
    finding = next(f for f in results["findings"] if f["id"] == f"DEV-{run['run_id']}")
    assert finding["status"] == "open"
    junit = (report_folder / "junit.xml").read_text()
    assert "the steady state did not hold after the method (deviated)" in junit


def test_findings_read_as_findings(report_folder: Path) -> None:
    results = json.loads((report_folder / "results.json").read_text())
    generated = results["generated_at"][:10]
    for finding in results["findings"]:
        assert finding["opened"] <= generated, finding
        for field in ("root_cause", "action", "retest_plan"):
            assert finding[field], (finding["id"], field)
    missed = next(f for f in results["findings"] if f["id"].startswith("RUN-"))
    assert missed["title"].startswith("inference missed its RTO target in the drill")


def test_figures_carry_units_and_the_precision_measured(report_folder: Path) -> None:
    results = json.loads((report_folder / "results.json").read_text())
    run = next(r for r in results["runs"] if r["run_id"].endswith("Z-gpu-node-loss"))
    achieved = run["components"][0]["achieved"]
    assert achieved["resolution_seconds"] == 1.0
    assert achieved["detection_delay_seconds"] > 0, "from evidence, not clamped to zero"
    assert achieved["provable_until_seconds"] == pytest.approx(20.0)
    page = (report_folder / "index.html").read_text()
    assert f"{achieved['rto_seconds']:.1f} s (1 s buckets)" in page
    assert "ms" not in run["components"][0]["explanation"], "one duration format throughout"


def test_sign_offs_append_each_signed_on_its_own_and_none_drops_another(
    report_folder: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    manifest_before = (report_folder / "manifest.json").read_bytes()
    key = report_folder.parents[1] / "keys" / "team.key"
    assert runner.invoke(cli, ["keygen", str(tmp_path / "auditor.key")]).exit_code == 0
    signers = [
        ["--by", "Ada Lovelace", "--role", "DR plan owner", "--sign-key", str(key)],
        ["--by", "Grace Hopper", "--role", "auditor", "--sign-key", str(tmp_path / "auditor.key")],
        ["--by", "Alan Turing", "--role", "management review"],  # no key: kept, unsigned
    ]
    for signer in signers:
        signed = runner.invoke(cli, ["report", "sign", str(report_folder), *signer])
        assert signed.exit_code == 0, signed.output
    assert "2 earlier sign-off(s) kept" in signed.output
    assert (report_folder / "manifest.json").read_bytes() == manifest_before, "not resealed"
    signoffs = json.loads((report_folder / "signoffs.json").read_text())
    assert [s["role"] for s in signoffs] == ["DR plan owner", "auditor", "management review"]
    assert signoffs[0]["key_fingerprint"] != signoffs[1]["key_fingerprint"]
    assert signoffs[2]["key_fingerprint"] is None and "signature" not in signoffs[2]
    manifest = json.loads(manifest_before)
    assert {s["manifest_hash_signed_off"] for s in signoffs} == {manifest["manifest_hash"]}
    assert "signoffs.json" not in {e["path"] for e in manifest["files"]}
    assert manifest["generator"]["tool"] == "aidrill" and manifest["generator"]["version"]
    assert manifest["generator"]["operator"] and manifest["generator"]["host"]
    verify = runner.invoke(cli, ["verify", str(report_folder), "--key", f"{key}.pub"])
    assert verify.exit_code == 0, verify.output
    assert "Ada Lovelace (DR plan owner)" in verify.output
    assert "signed by key sha256:" in verify.output
    assert "Alan Turing (management review)" in verify.output and "unsigned" in verify.output
    assert "signature: manifest.json signed by key" in verify.output, "the report's own stays"
    # A signed sign-off edited afterwards is caught; so is one naming another manifest.
    signoffs[1]["statement"] = "I accept it with no reservations at all."
    (report_folder / "signoffs.json").write_text(json.dumps(signoffs))
    edited = runner.invoke(cli, ["verify", str(report_folder)])
    assert edited.exit_code == 1 and "Grace Hopper (auditor)" in edited.output
    assert "the signature does not match the sign-off" in edited.output
    signoffs[1]["statement"] = "I have reviewed this report and its evidence and accept it."
    signoffs[2]["manifest_hash_signed_off"] = "0" * 64
    (report_folder / "signoffs.json").write_text(json.dumps(signoffs))
    moved = runner.invoke(cli, ["verify", str(report_folder)])
    assert moved.exit_code == 1 and "signed off a different manifest" in moved.output
    bad = runner.invoke(cli, ["run", "--participant", "nobody", "x.yaml"])
    assert bad.exit_code == 2 and "NAME:ROLE" in bad.output


def test_the_manifest_signature_proves_the_folder(report_folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    key = report_folder.parents[1] / "keys" / "team.key.pub"
    good = runner.invoke(cli, ["verify", str(report_folder), "--key", str(key)])
    assert good.exit_code == 0 and "signed by key sha256:" in good.output, good.output
    assert runner.invoke(cli, ["keygen", str(tmp_path / "other.key")]).exit_code == 0
    wrong = runner.invoke(
        cli, ["verify", str(report_folder), "--key", str(tmp_path / "other.key.pub")]
    )
    assert wrong.exit_code == 1 and "does not match" in wrong.output
    manifest = report_folder / "manifest.json"
    original = manifest.read_text()
    manifest.write_text(original.replace('"algorithm": "sha256"', '"algorithm": "sha256" '))
    tampered = runner.invoke(cli, ["verify", str(report_folder), "--key", str(key)])
    assert tampered.exit_code == 1 and "does not match" in tampered.output
    manifest.write_text(original)


def test_the_pdf_has_contents_and_no_table_past_the_page_edge(
    report_folder: Path, tmp_path: Path
) -> None:
    from PIL import Image

    pdf = report_folder / "report.pdf"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    assert "Contents" in text and "Runs that did not test what they were meant to" in text
    assert stranded_headings(report_folder) == []
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=120)  # fmt: skip
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 5
    for page in pages:
        image = Image.open(page).convert("L")
        width, height = image.size
        margin = int(width * 10 / 210)  # the outer 10 mm of the 14 mm margin: blank
        for x in [*range(0, margin), *range(width - margin, width)]:
            column = [image.getpixel((x, y)) for y in range(0, height - int(height * 0.06))]
            assert min(column) > 240, f"{page.name}: ink at x={x} (a table past the edge)"


def test_the_review_checklist_finds_every_item_in_all_five_formats(report_folder: Path) -> None:
    items = checklist(report_folder)
    kinds = {kind for kind, _ in items}
    assert {"caveat", "deviation", "invalid run", "invalid because", "finding"} <= kinds, kinds
    relapses = [text for kind, text in items if kind == "caveat" and "relapsed" in text]
    assert relapses == [
        "inference: relapsed after recovering: unhealthy again once, 3 s in all (first at "
        "+18 s from the fault); the RTO counts the first sustained recovery"
    ], relapses
    run_page = next(report_folder.parent.glob("runs/*-gpu-node-loss/report.html")).read_text()
    assert "<strong>Relapse:</strong> relapsed after recovering: unhealthy again once" in run_page
    assert missing_from_formats(report_folder) == {}


def _boxes(box: Any) -> Iterator[Any]:
    yield box
    for child in getattr(box, "children", None) or []:
        yield from _boxes(child)


def _first_run(pages: list[Any]) -> tuple[Any, Any]:
    """The elements of the first run section's heading and of the line under it."""
    for page in pages:
        for box in _boxes(page._page_box):
            element = getattr(box, "element", None)
            if element is not None and "run" in (element.get("class") or "").split():
                heading, meta = list(element)[:2]
                return heading, meta
    raise AssertionError("no run section printed")


def _where(pages: list[Any], element: Any) -> tuple[int, Any]:
    """The page index and the first box of ``element``."""
    for number, page in enumerate(pages):
        for box in _boxes(page._page_box):
            if getattr(box, "element", None) is element:
                return number, box
    raise AssertionError(f"{element.tag} not printed")


def test_a_run_heading_never_ends_a_printed_page(tmp_path: Path) -> None:
    # Push the first run's heading down until it just fits at the foot of its page:
    # the print layout must carry it over to the next page with its run.
    from weasyprint import HTML

    from aidrill.report._build import write_quarterly_report
    from aidrill.report._render import render_html

    runs = tmp_path / "runs"
    synthetic_run(runs, "gpu-node-loss", START, outage=5)
    synthetic_run(runs, "gpu-node-loss-again", START + 100, outage=7)
    none = tmp_path / "none"
    report = write_quarterly_report(
        load_plan(PLAN), PLAN, QUARTER, runs, tmp_path / "out", ["html"], none, none
    )
    printed = render_html(report, for_print=True)
    marker = '<div class="run"'
    assert marker in printed

    def layout(spacer: float) -> list[Any]:
        pushed = printed.replace(marker, f'<div style="height: {spacer:.2f}px"></div>' + marker, 1)
        return HTML(string=pushed).render().pages

    pages = layout(0)
    page_index, heading = _where(pages, _first_run(pages)[0])
    page = pages[page_index]._page_box
    content_bottom = page.content_box_y() + page.height
    room = content_bottom - (heading.position_y + heading.margin_height())
    spacer = room - 2 if room > 2 else room + page.height - 2  # fits, with 2 px to spare
    pages = layout(spacer)
    heading_element, meta_element = _first_run(pages)
    assert heading_element.tag == "h3" and "meta" in meta_element.get("class")
    assert _where(pages, heading_element)[0] == _where(pages, meta_element)[0], (
        "the run's heading was left alone at a page's foot"
    )
