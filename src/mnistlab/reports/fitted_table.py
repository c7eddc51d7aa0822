"""A table that never grows wider than the page, with row headers and pre-rendered cells.

The shared `html.table` sizes columns to their longest unbroken text, so a long run name, path
or error message pushes it past the page. Here every cell may break anywhere: the browser then
counts a cell's narrowest width as one character, and the table shrinks to the page. The styles
are inline so that the page needs no rule of its own.
"""

from __future__ import annotations

import html

from mnistlab.reports.html import cell

_TABLE = ' style="max-width:100%"'
_CELL = ' style="overflow-wrap:anywhere"'
# a row's heading (a setting's or a metric's key) is short: kept on one line
_ROW_HEADING = ' style="white-space:nowrap"'


class Markup(str):
    """Cell content that is already HTML (a <strong> best value): written as it is."""


def render(value) -> str:
    """A cell's HTML: Markup as it is, anything else shown by `html.cell` and escaped."""
    return value if isinstance(value, Markup) else html.escape(cell(value))


def fitted_table(rows, header=None, *, row_headers: bool = False) -> str:
    """An HTML table of `rows` (lists of values or Markup) under an optional `header`; with
    `row_headers` each row's first value is its heading (a setting's name, runs as columns)."""
    out = [f"<table{_TABLE}>"]
    if header:
        out.append(
            "<tr>" + "".join(f'<th scope="col"{_CELL}>{render(h)}</th>' for h in header) + "</tr>"
        )
    for row in rows:
        cells = [render(v) for v in row]
        first = (
            f'<th scope="row"{_ROW_HEADING}>{cells[0]}</th>'
            if row_headers
            else f"<td{_CELL}>{cells[0]}</td>"
        )
        out.append("<tr>" + first + "".join(f"<td{_CELL}>{c}</td>" for c in cells[1:]) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


__all__ = ["Markup", "fitted_table", "render"]
