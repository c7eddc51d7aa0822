"""The building blocks of every report: a page, its sections, tables, and embedded figures.

A page is one self-contained file: every image embedded as a base64 PNG, no script or style from
elsewhere, so that it opens with no network and no server.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from mnistlab._io import atomic_path
from mnistlab.reports import plots

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
img { max-width: 100%; display: block; margin: .5em 0; }
nav a { margin-right: 1em; }
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


@dataclass(frozen=True)
class Figures:
    """Where a report's figures go: always embedded in the page as PNG; with `folder`, each
    also saved there as a file of `file_format` ("png" or "svg"), named after its alt text."""

    folder: Path | None = None
    file_format: str = "png"

    def embed(self, fig, alt: str) -> str:
        """`fig` (a matplotlib Figure) as an ``<img>`` element holding its PNG, and also as a
        file in `folder` when there is one."""
        if self.folder is not None:
            name = re.sub(r"[^a-z0-9]+", "-", alt.lower()).strip("-")
            with atomic_path(Path(self.folder) / f"{name}.{self.file_format}") as tmp:
                fig.savefig(tmp, format=self.file_format, bbox_inches="tight", dpi=100)
        data = base64.b64encode(plots.figure_png_bytes(fig)).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


#: figures embedded in the page only
EMBEDDED = Figures()


def cell(value) -> str:
    """A table cell's text: floats to 4 significant digits, lists and dicts as JSON."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


def table(rows, header=None) -> str:
    """An HTML table: `rows` of values (each shown by `cell`), under an optional `header`."""
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


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
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n"
    )
