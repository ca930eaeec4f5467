"""The quarterly report's PDF: laid out in parts on every core, joined into one document.

WeasyPrint lays a document out on one core, and a large quarter's print layout was most
of the report's time (a 400-run quarter: about 250 pages, 10-20 s; benchmarks/README.md).
The print HTML marks where a part may begin (``<!--aidrill:part-->``: after the contents,
before a run, a finding, the findings and the appendix). The title page and contents are
one part; the rest is cut at those marks into as many parts as there are cores, balanced
by size, and each is laid out in its own process. Joining them gives the PDF what one
layout would have: "page N of M" on every page, the contents' page numbers, links and
bookmarks across parts, and the document's metadata. A part that begins at a mark begins
on a new page; nothing else about the layout changes.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from aidrill.report._quarterly import QuarterlyReport

PART_MARK = "<!--aidrill:part-->"
PICTURE_SCHEME = "aidrill-chart"
# Below this much print HTML per part, another process costs more than it saves.
_PART_AT_LEAST = 48_000
_MOST_PARTS = 4
_PX = 0.75  # PDF points per CSS pixel (WeasyPrint at zoom 1)
_TOC_TOKEN = re.compile(r'data-page="toc:([^"]*)"')
_PICTURE_URL = re.compile(rf'src="({PICTURE_SCHEME}:\d+)"')
_TOC_PLACEHOLDER = "888"  # as wide as the numbers a contents page will carry
# The footer of every page: Helvetica (one of PDF's standard fonts, nothing embedded),
# 8 pt, right-aligned at the right margin, in the middle of the bottom margin.
_FOOTER_FONT = "/AidrillPageNumber"
_FOOTER_SIZE = 8.0
_RIGHT_MARGIN = 14 / 25.4 * 72
_FOOTER_BASELINE = 16 / 25.4 * 72 / 2 - 2.8
_HELVETICA_WIDTHS = {" ": 278, "f": 278}  # every other character printed here: 556


@dataclass
class LaidOut:
    """One part, laid out and drawn: its PDF and what joining the parts needs from it.
    Positions are CSS pixels from the page's top left, as WeasyPrint gives them."""

    pdf: bytes
    pages: int
    anchors: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    links: list[tuple[int, str, tuple[float, float, float, float]]] = field(default_factory=list)
    bookmarks: list[tuple[int, str, int, float, float, bool]] = field(default_factory=list)


def write_pdf(report: QuarterlyReport, out: Path, render: Callable[..., str]) -> Path:
    """``render(report, for_print=True, chart_url=..., page_of=...)`` is the print HTML."""
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    pictures: dict[str, bytes] = {}

    def chart_url(section: Any) -> str:
        url = f"{PICTURE_SCHEME}:{len(pictures)}"
        pictures[url] = section.print_chart
        return url

    def page_of(anchor: str) -> Markup:
        return Markup(' data-page="toc:{}"').format(anchor)

    page = render(report, for_print=True, chart_url=chart_url, page_of=page_of)
    head, _, body = page.partition("<body>")
    head += "<body>"
    contents, *chunks = body.split(PART_MARK)
    bodies = [head + "".join(part) for part in balanced(chunks, _part_count(chunks))]

    def front(numbers: dict[str, str]) -> str:
        return head + _TOC_TOKEN.sub(
            lambda m: f'data-page="{numbers.get(m.group(1), _TOC_PLACEHOLDER)}"', contents
        )

    # The contents, numbered with placeholders for now, are laid out while the parts are.
    base = str(out)
    first, parts = _lay_out_all(bodies, pictures, base, lambda: lay_out(front({}), {}, base))
    offset = first.pages
    for _ in range(3):  # the contents' numbers do not change its length; if they did, again
        numbers = {name: str(page + 1) for name, (page, _, _) in _anchors(offset, parts).items()}
        first = lay_out(front(numbers), {}, base)
        if first.pages == offset:
            break
        offset = first.pages
    path = out / "report.pdf"
    path.write_bytes(join([first, *parts]))
    return path


def _part_count(chunks: list[str]) -> int:
    size = sum(len(chunk) for chunk in chunks)
    return max(1, min(os.cpu_count() or 1, _MOST_PARTS, size // _PART_AT_LEAST))


def balanced(chunks: list[str], count: int) -> list[list[str]]:
    """Consecutive chunks in ``count`` groups of about equal size (none empty)."""
    count = max(1, min(count, len(chunks)))
    total = sum(len(chunk) for chunk in chunks)
    groups: list[list[str]] = [[]]
    done = 0
    for index, chunk in enumerate(chunks):
        left = len(chunks) - index
        wanted = len(groups) * total / count  # where this group should end
        if (
            groups[-1]
            and len(groups) < count
            and (done + len(chunk) / 2 > wanted or left == count - len(groups))
        ):
            groups.append([])
        groups[-1].append(chunk)
        done += len(chunk)
    return groups


def _lay_out_all(
    bodies: list[str], pictures: dict[str, bytes], base: str, meanwhile: Callable[[], LaidOut]
) -> tuple[LaidOut, list[LaidOut]]:
    """The parts, each in its own process (one: in this one), and ``meanwhile()`` here."""
    wanted = [{url: pictures[url] for url in _PICTURE_URL.findall(body)} for body in bodies]
    if len(bodies) == 1:
        return meanwhile(), [lay_out(bodies[0], wanted[0], base)]
    with ProcessPoolExecutor(len(bodies)) as pool:
        futures = [pool.submit(lay_out, *part, base) for part in zip(bodies, wanted, strict=True)]
        return meanwhile(), [future.result() for future in futures]


def lay_out(html: str, pictures: dict[str, bytes], base: str) -> LaidOut:
    """Lay out and draw one part. Its internal links, anchors and bookmarks are taken out
    of WeasyPrint's hands: they may cross parts, so the join writes them."""
    from weasyprint import HTML

    document = HTML(string=html, base_url=base, url_fetcher=_fetcher(pictures)).render()
    part = LaidOut(pdf=b"", pages=len(document.pages))
    for index, page in enumerate(document.pages):
        for name, (x, y, *_) in page.anchors.items():
            part.anchors.setdefault(name, (index, x, y))
        part.links.extend(
            (index, target, rectangle)
            for kind, target, rectangle, _ in page.links
            if kind == "internal"
        )
        part.bookmarks.extend(
            (level, label, index, x, y, state != "closed")
            for level, label, (x, y), state in page.bookmarks
        )
        page.links[:] = [link for link in page.links if link[0] != "internal"]
        page.anchors.clear()
        page.bookmarks.clear()
    part.pdf = document.write_pdf()
    return part


def _anchors(offset: int, parts: list[LaidOut]) -> dict[str, tuple[int, float, float]]:
    """Every anchor's page in the joined document (its first occurrence, as in HTML)."""
    found: dict[str, tuple[int, float, float]] = {}
    for part in parts:
        for name, (page, x, y) in part.anchors.items():
            found.setdefault(name, (offset + page, x, y))
        offset += part.pages
    return found


def join(parts: list[LaidOut]) -> bytes:
    """One PDF of the parts in order, with what crosses them written again."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.annotations import Link
    from pypdf.generic import Fit

    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(io.BytesIO(part.pdf)), import_outline=False)
    metadata = PdfReader(io.BytesIO(parts[0].pdf)).metadata
    if metadata:
        writer.add_metadata(dict(metadata))
    heights = [float(page.mediabox.height) for page in writer.pages]
    anchors = _anchors(0, parts)

    def there(page: int, x: float, y: float) -> Fit:
        return Fit.xyz(left=x * _PX, top=heights[page] - y * _PX, zoom=0)

    for name, (page, x, y) in anchors.items():
        destination = _destination(name, writer.pages[page], there(page, x, y))
        writer.add_named_destination_object(destination)
    for start, part in _offsets(parts):
        for page, target, (x1, y1, x2, y2) in part.links:
            if target not in anchors:
                continue  # a link to nothing stays text, as WeasyPrint leaves it
            to_page, x, y = anchors[target]
            height = heights[start + page]
            link = Link(
                rect=(x1 * _PX, height - y2 * _PX, x2 * _PX, height - y1 * _PX),
                target_page_index=to_page,
                fit=there(to_page, x, y),
                border=[0, 0, 0],
            )
            writer.add_annotation(start + page, link)
    _bookmarks(writer, parts, there)
    _page_numbers(writer)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _offsets(parts: list[LaidOut]) -> Iterator[tuple[int, LaidOut]]:
    start = 0
    for part in parts:
        yield start, part
        start += part.pages


def _destination(name: str, page: Any, fit: Any) -> Any:
    from pypdf.generic import Destination

    return Destination(name, page.indirect_reference, fit)


def _bookmarks(writer: Any, parts: list[LaidOut], there: Callable[..., Any]) -> None:
    """The outline from every part's headings, nested by level across the parts."""
    open_items: list[tuple[int, Any]] = []  # (level, outline item) from the root down
    for start, part in _offsets(parts):
        for level, label, page, x, y, is_open in part.bookmarks:
            while open_items and open_items[-1][0] >= level:
                open_items.pop()
            item = writer.add_outline_item(
                title=label,
                page_number=start + page,
                parent=open_items[-1][1] if open_items else None,
                fit=there(start + page, x, y),
                is_open=is_open,
            )
            open_items.append((level, item))


def _page_numbers(writer: Any) -> None:
    """ "page N of M" at the bottom right of every page, over what the page draws."""
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject

    font = writer._add_object(
        DictionaryObject({
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        })
    )  # fmt: skip

    def stream(data: bytes) -> Any:
        content = DecodedStreamObject()
        content.set_data(data)
        return writer._add_object(content)

    save, restore = stream(b"q\n"), stream(b"\nQ\n")
    total = len(writer.pages)
    for number, page in enumerate(writer.pages, start=1):
        text = f"page {number} of {total}"
        width = sum(_HELVETICA_WIDTHS.get(c, 556) for c in text) * _FOOTER_SIZE / 1000
        x = float(page.mediabox.right) - _RIGHT_MARGIN - width
        y = float(page.mediabox.bottom) + _FOOTER_BASELINE
        resources = page[NameObject("/Resources")].get_object()
        fonts = resources.setdefault(NameObject("/Font"), DictionaryObject()).get_object()
        fonts[NameObject(_FOOTER_FONT)] = font
        contents = page[NameObject("/Contents")]
        drawn = contents.get_object()
        existing = list(drawn) if isinstance(drawn, ArrayObject) else [contents]
        footer = f"BT {_FOOTER_FONT} {_FOOTER_SIZE:g} Tf {x:.2f} {y:.2f} Td ({text}) Tj ET\n"
        page[NameObject("/Contents")] = ArrayObject(
            [save, *existing, restore, stream(footer.encode("ascii"))]
        )


def _fetcher(pictures: dict[str, bytes]) -> Any:
    """WeasyPrint's fetcher, answering the print charts' URLs from memory: a JPEG it
    reads this way is embedded as it is (no base64 in the page, no decoding)."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class Fetcher(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            if url in pictures:
                return URLFetcherResponse(url, pictures[url], {"Content-Type": "image/jpeg"})
            return super().fetch(url, headers)

    return Fetcher()
