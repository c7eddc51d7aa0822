"""Line styles that tell many curves apart: a colour, a marker and a dash pattern per curve.

matplotlib's default cycle has ten colours, so an eleventh curve repeats the first one's blue.
Here a curve's style is the combination of three things: among ten colours, a marker for each
further group of ten, and a dash pattern (of which there are as many as needed), so that no two
curves of a figure share all three.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistlab.reports import plots

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")
_NAMED_DASHES = ("-", "--", ":", "-.")


@dataclass(frozen=True)
class LineStyle:
    """One curve's colour (an RGBA tuple), dash pattern and marker."""

    color: tuple
    linestyle: object
    marker: str

    def kwargs(self, points: int = 0) -> dict:
        """Keyword arguments of ``Axes.plot``; a marker on about eight of `points` points (on
        every one when there are few), so that markers tell curves apart without hiding them."""
        return {
            "color": self.color,
            "linestyle": self.linestyle,
            "marker": self.marker,
            "markevery": max(1, points // 8),
            "markersize": 4,
        }


def dash(index: int):
    """The `index`-th dash pattern: solid, dashed, dotted, dash-dot, then ever longer dashes."""
    if index < len(_NAMED_DASHES):
        return _NAMED_DASHES[index]
    return (0, (2.0 + index, 1.5, 1.0, 1.5))


def color(index: int, count: int) -> tuple:
    """The `index`-th of `count` colours: ten distinct ones, twenty when more are needed."""
    name = "tab10" if count <= 10 else "tab20"
    size = 10 if count <= 10 else 20
    return tuple(plots.colormap(name)(index % size))


def grouped_styles(groups: list) -> list[LineStyle]:
    """A distinct style for each curve, curves of one group alike in colour and marker.

    groups: each curve's group (a configuration, when its curves are its seeds), any hashable.
    Group number g has colour g mod 10 and marker g // 10; the k-th curve of a group (and each
    further ten groups) is dashed differently. Distinct for up to 100 groups of any size.
    """
    order: dict = {}
    seen: dict = {}
    styles = []
    for group in groups:
        number = order.setdefault(group, len(order))
        within = seen.get(group, 0)
        seen[group] = within + 1
        styles.append(
            LineStyle(
                color=color(number % 10, 10),
                linestyle=dash(within + number // 10),
                marker=MARKERS[(number // 10) % len(MARKERS)],
            )
        )
    return styles


__all__ = ["MARKERS", "LineStyle", "color", "dash", "grouped_styles"]
