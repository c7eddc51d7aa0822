"""Every kind of report opened in headless Chromium 1280 px wide, as a reader opens it: the page
is no wider than the window, every figure decodes and is drawn with at least twice the pixels it
is shown at, and the page asks for nothing outside its own file.

The kinds: the run report of an MLP and of a k-NN run, the comparison of the two, and the
report of a small sweep. One browser and one set of reports serve the whole module; each page is
opened once and measured by one script (MEASURE), and the tests read the measurements.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from conftest import CHROMEDRIVER, CHROMIUM, headless_chromium
from mnistlab.cli import main

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="Debian's chromium and chromium-driver are not installed "
        "(apt-get install chromium chromium-driver)",
    ),
]

WINDOW_WIDTH = 1280

#: the report pages, by the names the tests are parametrized with
PAGES = ["run-mlp", "run-knn", "comparison", "sweep"]

SWEEP_STUDY = """
[study]
name = "browser-grid"
description = "a 2 x 2 grid of an MLP on digits, two seeds"
metric = "val_accuracy"

[base]
dataset = "digits"
hidden = [16]
epochs = 3
validation = 300

[grid]
lr = [0.1, 0.02]
batch_size = [32, 64]

[repeat]
seeds = [0, 1]
"""

# What a page looks like to a reader, in one round trip. An element "overflows" when it reaches
# past the viewport's right edge while its parent does not (the outermost culprit), text when
# its line does, and neither counts inside a box that clips or scrolls (a cell of a table that
# scrolls in its own box is no culprit).
MEASURE = """
const root = document.documentElement, limit = root.clientWidth + 0.5;
function clipped(node) {
  for (let up = node.parentElement; up && up !== root; up = up.parentElement) {
    if (getComputedStyle(up).overflowX !== "visible") return true;
  }
  return false;
}
function describe(element) {
  const box = element.getBoundingClientRect(), section = element.closest("section");
  return element.tagName.toLowerCase()
    + (element.id ? "#" + element.id : "")
    + (element.classList.length ? "." + [...element.classList].join(".") : "")
    + (section && section !== element ? " in section#" + section.id : "")
    + ` (${Math.round(box.width)} px wide, right edge at ${Math.round(box.right)} px)`;
}
const overflowing = [...document.body.querySelectorAll("*")].filter(element =>
  element.getBoundingClientRect().right > limit
  && element.parentElement.getBoundingClientRect().right <= limit && !clipped(element)
).map(describe);
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), line = new Range();
for (let text; (text = walker.nextNode());) {
  line.selectNodeContents(text);
  const parent = text.parentElement;
  if (line.getBoundingClientRect().right > limit && parent.getBoundingClientRect().right <= limit
      && !clipped(text)) {
    overflowing.push(`text ${JSON.stringify(text.data.slice(0, 40))} of ${describe(parent)}`);
  }
}
const scrolling = [...document.body.querySelectorAll("*")].filter(element =>
  ["auto", "scroll"].includes(getComputedStyle(element).overflowX)
  && element.scrollWidth > element.clientWidth + 1).map(describe);
const images = [...document.images].map(image => {
  const box = image.getBoundingClientRect();
  return {alt: image.alt, kind: image.src.slice(0, 22), complete: image.complete,
          natural: [image.naturalWidth, image.naturalHeight], shown: [box.width, box.height]};
});
const svgs = [...document.querySelectorAll("svg")].filter(svg => !svg.parentElement.closest("svg"))
  .map(svg => { const box = svg.getBoundingClientRect(); return [box.width, box.height]; });
return {innerWidth: window.innerWidth, clientWidth: root.clientWidth,
        scrollWidth: root.scrollWidth, overflowing, scrolling, images, svgs};
"""


@pytest.fixture(scope="module")
def module_env(tmp_path_factory):
    """HOME, caches and matplotlib's config in a temporary folder for the module's fixtures,
    which start before the per-test isolated environment."""
    home = tmp_path_factory.mktemp("browser-home")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "HOME": home,
            "XDG_CACHE_HOME": home / ".cache",
            "XDG_CONFIG_HOME": home / ".config",
            "XDG_RUNTIME_DIR": home / "runtime",
            "MPLCONFIGDIR": home / ".mpl",
        }.items():
            patch.setenv(name, str(value))
        for name in ("MNISTLAB_DATA", "MNISTLAB_OFFLINE", "MNISTLAB_SYSTEM_DATA"):
            patch.delenv(name, raising=False)
        yield home


def run_cli(*arguments) -> None:
    code = main([str(argument) for argument in arguments])
    assert code == 0, f"mnistlab {' '.join(map(str, arguments))} exited {code}"


@pytest.fixture(scope="module")
def reports(module_env, tmp_path_factory) -> dict[str, Path]:
    """The path of every page in PAGES, each made through the command line as a user makes it."""
    root = tmp_path_factory.mktemp("reports")
    mlp, knn = root / "mlp", root / "knn"
    common = ("--dataset", "digits", "--validation", "300")
    mlp_options = ("--model", "mlp", "--hidden", "32", "--epochs", "3")
    run_cli("train", *common, *mlp_options, "--out", mlp, "--quiet")
    run_cli("train", *common, "--model", "knn", "--k", "3", "--out", knn, "--quiet")
    run_cli("report", mlp, knn, "--out", root / "compare.html")
    study = root / "study.toml"
    study.write_text(SWEEP_STUDY, encoding="utf-8")
    run_cli("sweep", study, "--workers", "1", "--out", root / "sweep", "--quiet")
    return {
        "run-mlp": mlp / "report.html",
        "run-knn": knn / "report.html",
        "comparison": root / "compare.html",
        "sweep": root / "sweep" / "report.html",
    }


@pytest.fixture(scope="module")
def browser(module_env, tmp_path_factory):
    """Headless Chromium WINDOW_WIDTH px wide that logs every network request of its pages;
    quit (browser and driver) when the module is done."""
    folder = tmp_path_factory.mktemp("chromium")
    # the performance log holds the DevTools Network events: every request a page makes
    logs = {"goog:loggingPrefs": {"performance": "ALL"}}
    size = (WINDOW_WIDTH, 900)
    with headless_chromium(folder, size, os.environ, ["--disable-extensions"], logs) as driver:
        yield driver


def requested_urls(driver) -> list[str]:
    """Every URL requested since the last call, from the performance log (which it empties),
    but those of Chromium's own pages: the first tab's new-tab page (chrome://) loads its
    scripts while the first report opens."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent":
            if not params.get("documentURL", "").startswith("chrome://"):
                urls.append(params["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(params["url"])
    return urls


def visit(driver, path: Path) -> dict:
    """Open `path`, wait for its load event, and return MEASURE's answer plus "requests": the
    URLs the page asked for."""
    requested_urls(driver)  # drop what earlier pages logged
    driver.get(path.as_uri())  # returns once the load event has fired: images are decoded
    measured = driver.execute_script(MEASURE)
    measured["requests"] = requested_urls(driver)
    return measured


@pytest.fixture(scope="module")
def opened(browser, reports) -> dict[str, dict]:
    """MEASURE's answer for every page in PAGES."""
    return {name: visit(browser, path) for name, path in reports.items()}


def outside(urls: list[str]) -> list[str]:
    """The URLs that are neither the file itself nor embedded in it (data:), shortened."""
    return [url[:120] for url in urls if not url.startswith(("file:", "data:"))]


def broken(images: list[dict]) -> list[str]:
    return [i["alt"] for i in images if not i["complete"] or i["natural"][0] == 0]


# ---------------------------------------------------------------- the checks can fail

ONE_PIXEL_GIF = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def test_the_checks_see_an_overflow_a_broken_image_and_a_request_outside(browser, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(
        '<!DOCTYPE html><html><body><section id="s"><div class="wide" style="width:3000px">wide'
        '</div></section><img alt="nowhere" src="http://127.0.0.1:9/x.png">'
        f'<img alt="fine" src="data:image/gif;base64,{ONE_PIXEL_GIF}">'
        "</body></html>",
        encoding="utf-8",
    )
    measured = visit(browser, probe)
    assert measured["innerWidth"] == WINDOW_WIDTH
    assert measured["scrollWidth"] > measured["clientWidth"]
    assert measured["overflowing"] == [
        "div.wide in section#s (3000 px wide, right edge at 3008 px)"
    ]
    assert broken(measured["images"]) == ["nowhere"]
    assert outside(measured["requests"]) == ["http://127.0.0.1:9/x.png"]


# ---------------------------------------------------------------- every report


@pytest.mark.parametrize("name", PAGES)
def test_the_page_is_no_wider_than_the_window(opened, name):
    measured = opened[name]
    assert measured["innerWidth"] == WINDOW_WIDTH
    # a horizontal scroll bar appears as soon as the content is wider than the viewport
    assert measured["scrollWidth"] <= measured["clientWidth"], (
        f"{name} is {measured['scrollWidth']} px wide in a {measured['clientWidth']} px "
        f"viewport; what reaches past it: {measured['overflowing']}"
    )
    if measured["scrolling"]:
        # no failure: the page fits, but a reader scrolls these boxes sideways to see them
        warnings.warn(f"{name}: boxes that scroll sideways: {measured['scrolling']}", stacklevel=1)


@pytest.mark.parametrize("name", PAGES)
def test_every_figure_loads(opened, name):
    images, svgs = opened[name]["images"], opened[name]["svgs"]
    assert images or svgs, f"{name} has no figure"
    assert broken(images) == [], f"{name}: images that did not decode"
    assert all(width > 0 and height > 0 for width, height in svgs), svgs


@pytest.mark.parametrize("name", PAGES)
def test_nothing_is_requested_outside_the_file(opened, name):
    assert opened[name]["requests"], "the performance log recorded no request at all"
    assert outside(opened[name]["requests"]) == []


def blurred(images: list[dict]) -> list[str]:
    """The images that are neither SVG nor a PNG of at least two pixels per CSS pixel shown
    (one pixel of slack for the rounding of an odd width to half)."""
    found = []
    for image in images:
        if image["kind"].startswith("data:image/svg+xml"):
            continue
        sharp = all(
            n >= 2 * shown - 1 for n, shown in zip(image["natural"], image["shown"], strict=True)
        )
        if not (image["kind"].startswith("data:image/png") and sharp):
            shown = "x".join(f"{size:.0f}" for size in image["shown"])
            natural = "x".join(map(str, image["natural"]))
            found.append(f"{image['alt']}: {image['kind']} {natural} px shown at {shown} px")
    return found


@pytest.mark.parametrize("name", PAGES)
def test_figures_are_svg_or_png_of_twice_their_shown_size(opened, name):
    """Sharp on a 2x screen and when zoomed in."""
    assert opened[name]["images"] or opened[name]["svgs"], f"{name} has no figure"
    assert blurred(opened[name]["images"]) == []


# ---------------------------------------------------------------- the page shell itself


def test_the_shell_keeps_wide_tables_long_cells_and_big_figures_inside_the_page(browser, tmp_path):
    """What any report may hold, made with html.py alone: a table of 24 numeric columns
    scrolls in its own box, a table with a long path and a JSON value wraps those cells (and
    does not scroll), a figure 16 inches wide shrinks to the column keeping its proportions,
    and 40 section links wrap."""
    from mnistlab.reports import plots
    from mnistlab.reports.html import EMBEDDED, nav, page, section, table

    keys = [f"section-{n}-with-a-long-name" for n in range(40)]
    wide = table(
        [[f"run {r}", *(0.123456 * c for c in range(23))] for r in range(3)],
        header=["run", *(f"metric_{c}" for c in range(23))],
    )
    path = "/" + "/".join(["a_long_folder_name"] * 20) + "/report.html"
    init = {"name": "he_normal", "gain": 1.4142, "layers": list(range(40))}
    config = table([["out", path], ["init", init], ["lr", 0.01]], header=["key", "value"])
    fig = plots.figure((16, 3))
    fig.add_subplot().plot([0, 1, 2], [2, 0, 1])
    body = nav(keys) + section("wide", "Wide", wide) + section("config", "Config", config)
    body += section("figure", "Figure", EMBEDDED.embed(fig, "a wide figure"))
    body += section("text", "Text", f"<p>saved to {path}</p>")
    (tmp_path / "shell.html").write_text(page("shell", body), encoding="utf-8")

    measured = visit(browser, tmp_path / "shell.html")
    assert measured["scrollWidth"] <= measured["clientWidth"], measured["overflowing"]
    assert [s.split(" (")[0] for s in measured["scrolling"]] == ["table in section#wide"]
    (image,) = measured["images"]
    assert image["shown"][0] < measured["clientWidth"] and blurred([image]) == []
    ratio = image["natural"][0] / image["natural"][1]
    assert image["shown"][0] / image["shown"][1] == pytest.approx(ratio, rel=0.01)
    assert outside(measured["requests"]) == []
