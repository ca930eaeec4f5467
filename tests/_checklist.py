"""An auditor's review checklist over a quarterly report folder: every caveat, deviation,
invalid run and finding the report's model holds must be found in all five formats
(HTML, PDF, Markdown, JSON, JUnit). Returns what is missing, by format."""

from __future__ import annotations

import html
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path


def _squeeze(text: str) -> str:
    """Whitespace and hyphens removed: a PDF wraps lines anywhere, even inside a run
    id, and pdftotext drops the hyphen where a line broke after one."""
    return re.sub(r"[\s\-\u00ad]+", "", text)


def _formats(folder: Path) -> dict[str, str]:
    page = re.sub(r"<[^>]+>", " ", (folder / "index.html").read_text(encoding="utf-8"))
    pdf = subprocess.run(
        ["pdftotext", str(folder / "report.pdf"), "-"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    markdown = (folder / "summary.md").read_text(encoding="utf-8").replace("\\", "")
    junit = ET.parse(folder / "junit.xml").getroot()
    junit_text = " ".join(
        [*(t for e in junit.iter() for t in (e.text or "",)), *(
            v for e in junit.iter() for v in e.attrib.values())]
    )  # fmt: skip
    results = (folder / "results.json").read_text(encoding="utf-8")
    texts = {
        "html": html.unescape(page),
        "pdf": pdf,
        "md": markdown,
        "junit": junit_text,
        "json": " ".join(_strings(json.loads(results))),
    }
    return {name: _squeeze(text) for name, text in texts.items()}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def checklist(folder: Path) -> list[tuple[str, str]]:
    """Each item an auditor checks: (kind, text that must appear)."""
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    items = []
    for run in results["runs"]:
        items += [("caveat", c) for c in run["caveats"]]
        items += [("deviation", d) for d in run["deviations"]]
        if not run["valid"] and run["kind"] != "broken":
            items.append(("invalid run", run["run_id"]))
            items += [("invalid because", reason) for reason in run["invalid_reasons"]]
    for finding in results["findings"]:
        items += [("finding", finding["id"]), ("finding title", finding["title"])]
    return items


def missing_from_formats(folder: Path) -> dict[str, list[str]]:
    formats = _formats(folder)
    missing: dict[str, list[str]] = {}
    for kind, text in checklist(folder):
        needle = _squeeze(html.unescape(text))
        for name, haystack in formats.items():
            if needle not in haystack:
                missing.setdefault(name, []).append(f"{kind}: {text}")
    return missing


def stranded_headings(folder: Path) -> list[tuple[int, str]]:
    """Headings printed as the last line of a page (above its page-number footer),
    their text on the next page: (page number, heading)."""
    page = (folder / "index.html").read_text(encoding="utf-8")
    headings = {
        " ".join(html.unescape(re.sub(r"<[^>]+>", "", inner)).split())
        for inner in re.findall(r"<h[2-4][^>]*>(.*?)</h[2-4]>", page, flags=re.S)
    }
    text = subprocess.run(
        ["pdftotext", "-layout", str(folder / "report.pdf"), "-"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    found = []
    for number, printed in enumerate(text.split("\f"), start=1):
        lines = [" ".join(line.split()) for line in printed.splitlines() if line.strip()]
        body = [line for line in lines if not re.fullmatch(r"page \d+ of \d+", line)]
        if body and body[-1] in headings:
            found.append((number, body[-1]))
    return found
