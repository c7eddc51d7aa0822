"""`mnistlab serve` in a real browser: headless Chromium draws a digit on the page's canvas
with pointer events, and the page shows the class the API gives for that same drawing."""

from __future__ import annotations

import base64
import os
import shutil

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (make test installs them "
    "where it runs as root)",
)

#: a "7" as strokes across the 280x280 canvas, in canvas pixels
SEVEN = [[(70, 60), (210, 60), (200, 90), (150, 170), (120, 235)], [(110, 140), (190, 140)]]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    tmp_path = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1000,800",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    # the module's browser starts before the per-test isolated environment: give it its own
    home = tmp_path / "home"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_RUNTIME_DIR": str(home / "runtime"),
        "TMPDIR": str(tmp_path),
    }
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"), env=env)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def draw(driver, strokes, pointer: str) -> None:
    """Each stroke pressed down at its first point and dragged through the rest, by a pointer
    of kind `pointer` (mouse, pen or touch)."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    canvas = driver.find_element("id", "canvas")
    scale = canvas.size["width"] / 280
    left, top = canvas.location["x"], canvas.location["y"]
    actions = ActionBuilder(driver, mouse=PointerInput(pointer, pointer))
    for stroke in strokes:
        x, y = stroke[0]
        actions.pointer_action.move_to_location(left + x * scale, top + y * scale)
        actions.pointer_action.pointer_down()
        for x, y in stroke[1:]:
            actions.pointer_action.move_to_location(left + x * scale, top + y * scale)
        actions.pointer_action.pointer_up()
    actions.perform()


def settled_answer(driver) -> tuple[str, str]:
    """(label, class) the page shows once its last request has been answered."""
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):
        prediction = d.find_element("id", "prediction")
        label = prediction.get_attribute("data-label")
        idle = d.execute_script("return document.body.dataset.state") == "idle"
        return (label, prediction.text) if idle and label else False

    return WebDriverWait(driver, 20).until(shown)


@pytest.mark.parametrize("pointer", ["mouse", "pen"])
def test_a_digit_drawn_on_the_page_is_classified_as_the_api_classifies_it(server, browser, pointer):
    browser.get(server + "/")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.body.dataset.ready")
    )
    assert browser.find_element("id", "about").text.startswith("mlp trained on digits")
    assert len(browser.find_elements("css selector", "#bars .bar")) == 10
    draw(browser, SEVEN, pointer)
    label, shown_class = settled_answer(browser)
    drawing = browser.execute_script(
        "return document.getElementById('canvas').toDataURL('image/png')"
    )
    body = base64.b64decode(drawing.split(",", 1)[1])
    answer = httpx.post(
        server + "/api/predict", content=body, headers={"content-type": "image/png"}
    ).json()
    assert label == str(answer["label"]) and shown_class == answer["class"]
    assert shown_class == "7"  # and a 7 it is (a seeded model, a fixed drawing)
    best = browser.find_element("css selector", "#bars .bar.best .name").text
    assert best == answer["class"]
    seen = browser.find_element("id", "model-input").get_attribute("src")
    assert seen.startswith("data:image/png;base64,")
    browser.find_element("id", "clear").click()
    assert browser.find_element("id", "prediction").get_attribute("data-label") == ""
