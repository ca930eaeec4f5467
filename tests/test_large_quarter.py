"""A large quarter's print layout (issue 25, speed at scale): past 60 runs the PDF lists
the runs with nothing to note one per line, prints the ones that met with a caveat
briefly, and prints the rest in full with their charts as pictures of the same SVG
charts index.html draws. Nothing an auditor checks may go missing on the way."""

from __future__ import annotations

import io
import re
import subprocess
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from aidrill.cli.main import cli
from aidrill.errors import EvidenceError
from aidrill.report._raster import chart_picture

from ._checklist import missing_from_formats
from ._runs import synthetic_run
from .conftest import copy_shipped_files

QUARTER = "2026-Q3"
# Outages: none (nothing to note), 5 s of every request failing (met, with the caveat
# that the fault was not borne gracefully) and 40 s (the 20 s target missed).
LAYOUT = {"quiet": (0.0, 25), "caveat": (5.0, 30), "missed": (40.0, 6)}  # 61: past 60


@pytest.fixture(scope="module")
def large_quarter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("large")
    copy_shipped_files(root)
    start = datetime(2026, 7, 2, tzinfo=UTC).timestamp()
    planned = [(kind, outage) for kind, (outage, count) in LAYOUT.items() for _ in range(count)]
    with ProcessPoolExecutor(2) as pool:  # each run draws its own page: both cores
        runs = pool.map(
            _one_run,
            [root / "reports" / "runs"] * len(planned),
            [kind for kind, _ in planned],
            [start + 120 * i for i in range(len(planned))],
            [outage for _, outage in planned],
        )
        names: dict[str, list[str]] = {}
        for (kind, _), run in zip(planned, runs, strict=True):
            names.setdefault(kind, []).append(run.name)
    done = CliRunner().invoke(
        cli,
        ["report", "--quarter", QUARTER, "--runs", str(root / "reports" / "runs"),
         "--out", str(root / "out"), "--plan", str(root / "drplan.yaml")],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    return root / "out", names


def _one_run(runs: Path, kind: str, start: float, outage: float) -> Path:
    return synthetic_run(runs, kind, start, outage=outage, page=False)


def _pdf_text(folder: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(folder / "report.pdf"), "-"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip


def test_every_caveat_deviation_and_finding_is_in_all_five_formats(
    large_quarter: tuple[Path, dict[str, list[str]]],
) -> None:
    folder, names = large_quarter
    assert missing_from_formats(folder) == {}
    text = re.sub(r"\s+", "", _pdf_text(folder))
    for run_id in (run for runs in names.values() for run in runs):
        assert run_id.replace("-", "") in text.replace("-", ""), run_id


def test_the_runs_in_full_carry_their_charts_as_pictures_and_the_brief_ones_none(
    large_quarter: tuple[Path, dict[str, list[str]]],
) -> None:
    folder, names = large_quarter
    listing = subprocess.run(
        ["pdfimages", "-list", str(folder / "report.pdf")],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.splitlines()[2:]  # fmt: skip
    encodings = [line.split()[8] for line in listing]
    assert encodings.count("jpeg") == len(names["missed"]), listing
    text = _pdf_text(folder)
    assert text.count("Timeline (UTC):") == len(names["missed"])
    assert f"The {len(names['caveat'])} that met every target with a caveat" in " ".join(
        text.split()
    )
    # The screen layout keeps every run in full, its chart as SVG (and the trend's).
    page = (folder / "index.html").read_text()
    assert page.count('<div class="chart"><svg') == sum(len(runs) for runs in names.values()) + 1
    assert "aidrill-chart:" not in page


def test_a_chart_picture_is_drawn_from_the_svg_and_refuses_what_it_cannot_draw() -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 40" font-size="12">'
        '<rect x="0" y="0" width="50" height="40" fill="#ffe3e3"/>'
        '<line x1="0" x2="100" y1="20" y2="20" stroke="#495057" stroke-dasharray="4 3"/>'
        '<polyline points="0,30 50,10 100,30" fill="none" stroke="#2b8a3e"/>'
        '<text x="98" y="12" text-anchor="end">SLO</text></svg>'
    )
    image = Image.open(io.BytesIO(chart_picture(svg)))
    assert image.format == "JPEG"
    assert image.size == (200, 80)  # the SVG's aspect, at print resolution
    red, green, _ = image.getpixel((20, 60))[:3]
    assert red > 240 and green < 240, "the fault's shading is drawn"
    assert min(image.getpixel((150, 60))[:3]) > 240, "nothing drawn where nothing is"
    with pytest.raises(EvidenceError, match="circle"):
        chart_picture(svg.replace("<text", '<circle cx="1" cy="1" r="1"/><text'))
