"""The quarterly PDF laid out in parts on several processes and joined (report/_print.py):
the joined document must read exactly as one layout would, with page numbers, contents,
bookmarks, links and metadata that cross the parts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader

from aidrill.plan import load_plan
from aidrill.report import Quarter, _print
from aidrill.report._build import write_quarterly_report

from ._runs import synthetic_run
from .conftest import PLAN

QUARTER = Quarter.current()
START = QUARTER.start.timestamp() + 3600
FOOTER = re.compile(r"page (\d+) of (\d+)")


def _pdf(tmp_path: Path, name: str, most_parts: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    runs = tmp_path / "runs"
    if not runs.exists():
        for index, outage in enumerate((5.0, 40.0, 7.0, 30.0, 3.0)):
            synthetic_run(runs, f"drill-{index}", START + 200 * index, outage=outage)
    monkeypatch.setattr(_print, "_PART_AT_LEAST", 1)
    monkeypatch.setattr(_print, "_MOST_PARTS", most_parts)
    monkeypatch.setattr(_print.os, "cpu_count", lambda: most_parts)
    none = tmp_path / "none"
    out = tmp_path / name
    write_quarterly_report(load_plan(PLAN), PLAN, QUARTER, runs, out, ["pdf"], none, none)
    return out / "report.pdf"


def _pages(pdf: Path) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    return text.split("\f")[:-1]


def _words(pages: list[str]) -> list[str]:
    return " ".join(FOOTER.sub("", page) for page in pages).split()


def _page_of_heading(pages: list[str], heading: str) -> int:
    for number, page in enumerate(pages, start=1):
        if number > 1 and any(line.strip() == heading for line in page.splitlines()):
            return number
    raise AssertionError(f"{heading!r} not printed")


@pytest.fixture
def parted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _pdf(tmp_path, "parted", 4, monkeypatch)


def test_parts_read_word_for_word_as_one_layout(
    parted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _pdf(tmp_path, "whole", 1, monkeypatch)
    assert len(_pages(parted)) > len(_pages(whole)), "each part begins on a new page"
    # Past the title and contents (its report id, time and page numbers differ).
    assert _words(_pages(parted)[1:]) == _words(_pages(whole)[1:])
    assert "{" not in " ".join(_words(_pages(whole))), "no stylesheet printed as text"


def test_every_page_is_numbered_in_order_of_the_whole(parted: Path) -> None:
    pages = _pages(parted)
    assert len(pages) >= 8
    for number, page in enumerate(pages, start=1):
        assert FOOTER.findall(page) == [(str(number), str(len(pages)))], page[-300:]


def test_the_contents_give_the_page_each_section_and_run_is_on(parted: Path) -> None:
    pages = _pages(parted)
    entries = re.findall(r"^\s*(?:\d+\.\s+)?(.+?)\s*\.{3,}\s*(\d+)\s*$", pages[0], flags=re.M)
    titles = {title.rstrip(" ."): int(number) for title, number in entries}
    assert {"Executive summary", "Runs", "Findings and remediation", "Evidence appendix"} <= set(
        titles
    ), titles
    for title in ("Executive summary", "Runs", "Findings and remediation", "Sign-off"):
        assert titles[title] == _page_of_heading(pages, title), title
    runs = {t: n for t, n in titles.items() if t.startswith("Losing")}
    assert len(runs) == 5 and len(set(runs.values())) > 1, runs


def test_bookmarks_links_and_destinations_cross_the_parts(parted: Path) -> None:
    pages = _pages(parted)
    reader = PdfReader(parted)
    numbers = {page.indirect_reference.idnum: index + 1 for index, page in enumerate(reader.pages)}
    top = reader.outline
    assert [item.title for item in top if not isinstance(item, list)] == [
        f"Disaster-recovery drill report — {QUARTER}"
    ]
    sections = [item for item in top[1] if not isinstance(item, list)]
    runs = next(index for index, item in enumerate(top[1]) if getattr(item, "title", "") == "Runs")
    run_marks = [item for item in top[1][runs + 1] if not isinstance(item, list)]
    assert len(run_marks) == 5, [item.title for item in run_marks]
    for item in sections:
        if item.title in ("Findings and remediation", "Evidence appendix"):
            assert reader.get_destination_page_number(item) + 1 == _page_of_heading(
                pages, item.title
            )
    destinations = reader.named_destinations
    run_ids = [name for name in destinations if name.startswith("run-")]
    assert len(run_ids) == 5
    for name in run_ids:
        page = reader.get_destination_page_number(destinations[name]) + 1
        assert name.removeprefix("run-") in " ".join(pages[page - 1].split())
    # The contents link every run in another part to the page it is on.
    targets = [
        numbers[annotation.get_object()["/Dest"][0].idnum]
        for annotation in reader.pages[0].get("/Annots", [])
    ]
    for name in run_ids:
        assert reader.get_destination_page_number(destinations[name]) + 1 in targets


def test_the_joined_document_keeps_its_metadata(parted: Path) -> None:
    info = PdfReader(parted).metadata
    assert info is not None
    assert info.title and str(QUARTER) in info.title
    assert info.author and info.subject and "evidence hash" in info.subject


@given(st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=40),
       st.integers(min_value=1, max_value=6))  # fmt: skip
def test_parts_are_consecutive_none_empty_and_about_even(sizes: list[int], count: int) -> None:
    chunks = ["x" * size for size in sizes]
    groups = _print.balanced(chunks, count)
    assert [chunk for group in groups for chunk in group] == chunks
    assert len(groups) == min(count, len(chunks)) and all(groups)
    largest = max(sum(map(len, group)) for group in groups)
    assert largest <= sum(sizes) / len(groups) + max(sizes)
