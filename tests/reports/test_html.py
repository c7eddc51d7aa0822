"""The page shell without a browser: figures embedded at twice the pixels they are shown at,
long table cells marked to wrap, and nothing in the page from elsewhere."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from mnistlab.reports import plots
from mnistlab.reports.html import EMBEDDED, LONG_CELL, Figures, page, png_size, table


def test_a_figure_is_a_png_of_twice_the_pixels_it_is_shown_at():
    fig = plots.figure((4, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    element = EMBEDDED.embed(fig, "a line")
    width, height = (int(v) for v in re.search(r'width="(\d+)" height="(\d+)"', element).groups())
    blob = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', element).group(1))
    with Image.open(io.BytesIO(blob)) as picture:
        assert picture.format == "PNG"
        assert png_size(blob) == picture.size
        # about 4 x 2 inches at 100 CSS px per inch, less the margins bbox_inches="tight" trims
        assert 300 < width <= 400 and 150 < height <= 200
        assert abs(picture.width - 2 * width) <= 1 and abs(picture.height - 2 * height) <= 1
    assert element.startswith('<img alt="a line" ')


def test_a_figure_saved_as_a_file_has_the_embedded_pngs_pixels(tmp_path):
    fig = plots.figure((4, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    element = Figures(folder=tmp_path).embed(fig, "A line!")
    blob = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', element).group(1))
    with Image.open(tmp_path / "a-line.png") as saved:
        assert saved.size == png_size(blob)


def test_png_size_refuses_what_is_not_a_png():
    with pytest.raises(ValueError, match=r"not a PNG: it starts with b'GIF89a"):
        png_size(b"GIF89a" + bytes(20))


def test_only_long_cells_may_break_anywhere():
    path = "/" + "x" * LONG_CELL
    html_table = table([["out", path], ["lr", 0.01]], header=["key", "value"])
    assert f'<td class="long">{path}</td>' in html_table
    assert "<td>out</td>" in html_table and "<td>0.01</td>" in html_table


def test_the_page_asks_for_nothing_outside_itself():
    document = page("t", "<p>x</p>")
    assert not re.search(r"(https?:)?//|@import|url\(", document)
    assert '<meta name="viewport"' in document
