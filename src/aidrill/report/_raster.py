"""The run charts of a large quarter's PDF, as pictures.

WeasyPrint lays out every ``<text>`` of an inline SVG chart through its text engine
(2 to 3 ms apiece, 16 per chart) and draws every shape through its SVG code: a 400-run
quarter's 150 printed charts cost it about 6 s. A JPEG it embeds as it is, without
decoding it. So the print layout of a large quarter shows each run's chart as a
picture drawn here from the very SVG the HTML shows: one chart, two renderings, the
same marks. This draws the SVG subset ``_sparkline`` writes (rect, line, polyline,
text; fill, stroke, stroke-width, stroke-dasharray, fill-opacity, text-anchor) and
refuses anything else, so a new mark in the chart cannot silently go missing in print.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from functools import cache

from PIL import Image, ImageColor, ImageDraw, ImageFont

from aidrill.errors import EvidenceError

_SVG = "{http://www.w3.org/2000/svg}"
_SCALE = 2.0  # pixels per SVG unit: a 720-unit chart printed 180 mm wide is ~200 dpi
_QUALITY = 80


def chart_picture(svg: str) -> bytes:
    """``svg`` (a chart ``_sparkline`` drew) as a JPEG."""
    root = ET.fromstring(svg)
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    font_size = float(root.attrib.get("font-size", 12))
    image = Image.new("RGB", (round(width * _SCALE), round(height * _SCALE)), "white")
    draw = ImageDraw.Draw(image, "RGBA")
    for element in root:
        _draw(draw, element, font_size)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=_QUALITY, subsampling=0)
    return out.getvalue()


def _draw(draw: ImageDraw.ImageDraw, element: ET.Element, font_size: float) -> None:
    tag = element.tag.removeprefix(_SVG)
    a = element.attrib
    stroke = _color(a.get("stroke"))
    width = max(1, round(float(a.get("stroke-width", 1)) * _SCALE))
    if tag == "rect":
        x, y = _scaled(a["x"]), _scaled(a["y"])
        box = (x, y, x + _scaled(a["width"]), y + _scaled(a["height"]))
        fill = _color(a.get("fill", "black"), float(a.get("fill-opacity", 1)))
        draw.rectangle(box, fill=fill, outline=stroke, width=width if stroke else 0)
    elif tag == "line":
        start = (_scaled(a["x1"]), _scaled(a["y1"]))
        end = (_scaled(a["x2"]), _scaled(a["y2"]))
        dashes = a.get("stroke-dasharray")
        for segment in _dashed(start, end, dashes) if dashes else [(start, end)]:
            draw.line(segment, fill=stroke, width=width)
    elif tag == "polyline":
        points = [
            (_scaled(x), _scaled(y)) for x, y in (pair.split(",") for pair in a["points"].split())
        ]
        if a.get("fill", "none") != "none":
            raise EvidenceError(f"a filled polyline is not drawn in print: {a}")
        draw.line(points, fill=stroke, width=width, joint="curve")
    elif tag == "text":
        align = a.get("text-anchor", "start")
        at, text = (_scaled(a["x"]), _scaled(a["y"])), element.text or ""
        font = _font(font_size)
        room = draw.im.size[0] - at[0] if align == "start" else None
        while room is not None and font.size > 6 and draw.textlength(text, font=font) > room:
            font = _font(font.size / _SCALE - 0.5)  # a label wider than its room shrinks
        anchor = {"start": "ls", "middle": "ms", "end": "rs"}[align]
        draw.text(at, text, fill=_color(a.get("fill", "black")), font=font, anchor=anchor)
    else:
        raise EvidenceError(f"the chart holds a <{tag}> that is not drawn in print")


def _scaled(value: str) -> float:
    return float(value) * _SCALE


def _color(value: str | None, opacity: float = 1.0) -> tuple[int, int, int, int] | None:
    if value is None or value == "none":
        return None
    red, green, blue = ImageColor.getrgb(value)[:3]
    return red, green, blue, round(255 * opacity)


def _dashed(
    start: tuple[float, float], end: tuple[float, float], dashes: str
) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The drawn pieces of a dashed straight line (on, off, on, ... in SVG units)."""
    pattern = [float(v) * _SCALE for v in dashes.replace(",", " ").split()]
    (x1, y1), (x2, y2) = start, end
    length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
    if length == 0 or not pattern or sum(pattern) <= 0:
        return [(start, end)]
    pieces, at, index = [], 0.0, 0
    while at < length:
        step = pattern[index % len(pattern)]
        if index % 2 == 0:
            until = min(at + step, length)
            pieces.append((
                (x1 + (x2 - x1) * at / length, y1 + (y2 - y1) * at / length),
                (x1 + (x2 - x1) * until / length, y1 + (y2 - y1) * until / length),
            ))  # fmt: skip
        at += step
        index += 1
    return pieces


@cache
def _font(size: float) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size * _SCALE)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise EvidenceError("Pillow cannot draw scalable text here (no FreeType)")
    return font
