"""A table that never grows wider than the page, with row headers and pre-rendered cells.

The shared `html.table` sizes columns to their longest unbroken text, so a long run name, path
or error message pushes it past the page. Here a long cell may break anywhere: the browser then
counts its narrowest width as one character, and the table shrinks to the page, while short
cells (numbers, headings) stay on one line. The styles are inline so that the page needs no
rule of its own.
"""

from __future__ import annotations

import html
import re

from mnistlab.reports.html import cell

_TABLE = ' style="max-width:100%"'
_BREAKABLE = ' style="overflow-wrap:anywhere"'
_ONE_LINE = ' style="white-space:nowrap"'
#: cells up to this many characters stay on one line; longer ones break where they must
SHORT = 24


class Markup(str):
    """Cell content that is already HTML (a <strong> best value): written as it is."""


def render(value) -> str:
    """A cell's HTML: Markup as it is, anything else shown by `html.cell` and escaped."""
    return value if isinstance(value, Markup) else html.escape(cell(value))


def _style(content: str) -> str:
    """One line for a short cell, breaks anywhere for a long one (content: its HTML)."""
    text = html.unescape(re.sub(r"<[^>]*>", "", content))
    return _ONE_LINE if len(text) <= SHORT else _BREAKABLE


def fitted_table(rows, header=None, *, row_headers: bool = False) -> str:
    """An HTML table of `rows` (lists of values or Markup) under an optional `header`; with
    `row_headers` each row's first value is its heading (a setting's name, runs as columns)."""
    out = [f"<table{_TABLE}>"]
    if header:
        headings = [render(h) for h in header]
        out.append(
            "<tr>" + "".join(f'<th scope="col"{_style(h)}>{h}</th>' for h in headings) + "</tr>"
        )
    for row in rows:
        cells = [render(v) for v in row]
        if row_headers:
            first = f'<th scope="row"{_style(cells[0])}>{cells[0]}</th>'
        else:
            first = f"<td{_style(cells[0])}>{cells[0]}</td>"
        out.append(
            "<tr>" + first + "".join(f"<td{_style(c)}>{c}</td>" for c in cells[1:]) + "</tr>"
        )
    out.append("</table>")
    return "\n".join(out)


__all__ = ["Markup", "fitted_table", "render"]
