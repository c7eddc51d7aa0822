"""The building blocks of every report: a page, its sections, tables, and embedded figures.

A page is one self-contained file: every image embedded as a base64 PNG, no script, style or
font from elsewhere, so that it opens with no network and no server. It fits a 1280 px window:
a table wider than the page scrolls inside its own box, a long cell (a path, a JSON value)
wraps, a figure shrinks to the column, and the section links wrap onto further lines.
"""

from __future__ import annotations

import base64
import html
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from mnistlab._io import atomic_path
from mnistlab.reports import plots

# Every table, made by `table` or written by hand in a section, is a block that scrolls sideways:
# a wide one scrolls inside its own box instead of widening the page. The body's `break-word`
# wraps a long word in running text; only a "long" cell may break anywhere, because
# `anywhere` also lowers a cell's minimum width, and a table short of room would then break
# every number in it.
STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1100px;
       color: #222; overflow-wrap: break-word; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { display: block; max-width: 100%; overflow-x: auto; border-collapse: collapse;
        margin: .5em 0; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
td.long { overflow-wrap: anywhere; min-width: 14em; text-align: left; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
img, svg, canvas, video { max-width: 100%; height: auto; }
img { display: block; margin: .5em 0; }
nav { display: flex; flex-wrap: wrap; gap: .2em 1em; }
"""

# Counts images that decoded, so a headless browser can check the report without a network.
SCRIPT = """
window.addEventListener("load", function () {
  var images = document.images, ok = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) ok++;
  }
  document.body.setAttribute("data-images-total", images.length);
  document.body.setAttribute("data-images-decoded", ok);
});
"""

#: CSS pixels per inch of figure: a 6.4-inch-wide figure is shown 640 px wide
DISPLAY_DPI = 100
#: image pixels per CSS pixel: figures are drawn at twice the size they are shown at, so that
#: their lines and text stay sharp on a high-density screen and when the page is zoomed
PIXEL_DENSITY = 2
#: a cell of more characters than this (a path, a JSON value) may break anywhere to wrap
LONG_CELL = 40


@dataclass(frozen=True)
class Figures:
    """Where a report's figures go: always embedded in the page as PNG; with `folder`, each
    also saved there as a file of `file_format` ("png" or "svg"), named after its alt text, at
    the resolution of the embedded PNG."""

    folder: Path | None = None
    file_format: str = "png"

    def embed(self, fig, alt: str) -> str:
        """`fig` (a matplotlib Figure) as an ``<img>`` element holding its PNG, drawn at
        PIXEL_DENSITY times the size it is shown at, and also as a file in `folder` when
        there is one."""
        if self.folder is not None:
            name = re.sub(r"[^a-z0-9]+", "-", alt.lower()).strip("-")
            with atomic_path(Path(self.folder) / f"{name}.{self.file_format}") as tmp:
                fig.savefig(
                    tmp,
                    format=self.file_format,
                    bbox_inches="tight",
                    dpi=DISPLAY_DPI * PIXEL_DENSITY,
                )
        return png_image(plots.figure_png_bytes(fig, dpi=DISPLAY_DPI * PIXEL_DENSITY), alt)


#: figures embedded in the page only
EMBEDDED = Figures()


def png_image(png: bytes, alt: str) -> str:
    """An ``<img>`` holding `png` as a data URL, shown at 1/PIXEL_DENSITY of its pixel size.

    The width and height attributes let the browser keep the figure's place before it decodes
    and, with the page's ``height: auto``, keep its proportions when it shrinks to the column.
    """
    width, height = png_size(png)
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<img alt="{html.escape(alt)}" width="{round(width / PIXEL_DENSITY)}" '
        f'height="{round(height / PIXEL_DENSITY)}" src="data:image/png;base64,{data}">'
    )


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of a PNG, read from its header (the IHDR chunk that the
    format puts first, after the 8-byte signature)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError(f"not a PNG: it starts with {png[:16]!r}")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def cell(value) -> str:
    """A table cell's text: floats to 4 significant digits, lists and dicts as JSON."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


def table(rows, header=None) -> str:
    """An HTML table: `rows` of values (each shown by `cell`), under an optional `header`.

    A cell longer than LONG_CELL characters is of class "long": it may break anywhere, and only
    it, so that numbers in the other cells never break across lines.
    """
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(_td(cell(v)) for v in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _td(text: str) -> str:
    opening = '<td class="long">' if len(text) > LONG_CELL else "<td>"
    return f"{opening}{html.escape(text)}</td>"


def section(key: str, title: str, body: str) -> str:
    """A ``<section id=key>`` with its `title` as a heading above `body` (HTML)."""
    return f'<section id="{key}">\n<h2>{html.escape(title)}</h2>\n{body}\n</section>'


def nav(sections) -> str:
    """Links to the page's sections, by their keys."""
    return "<nav>" + "".join(f'<a href="#{s}">{s}</a>' for s in sections) + "</nav>"


def page(title: str, body: str) -> str:
    """A complete HTML document: `title`, the shared STYLE, `body`, and the SCRIPT that counts
    decoded images."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n"
    )
