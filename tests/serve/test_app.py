"""`mnistlab serve` on a trained `digits` run, in a process of its own: the API answers what
`predict --json` prints, bad bodies get JSON errors after which it keeps serving, concurrent
clients get their own answers; and in a real browser, headless Chromium draws a digit on the
page's canvas with pointer events and the page shows the class the API gives for that drawing."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from conftest import CHROMEDRIVER, CHROMIUM, headless_chromium
from mnistlab.cli import main
from mnistlab.data import load_dataset
from mnistlab.data.images import read_gray
from mnistlab.experiments.config import resolve_config
from mnistlab.experiments.runs import train_run
from mnistlab.serve.app import MAX_BYTES
from mnistlab.serve.predictor import Predictor

NEEDS_BROWSER = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (make test installs them "
    "where it runs as root)",
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve") / "mlp"
    config = resolve_config(
        {"dataset": "digits", "model": "mlp", "hidden": [64], "epochs": 20, "batch_size": 32}
    )
    train_run(config, folder, store=False, echo=lambda *a, **k: None)
    return folder


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory):
    """The base URL of a running `mnistlab serve run_dir --port 0`; stopped after the tests."""
    home = tmp_path_factory.mktemp("server-home")
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "mnistlab", "serve", str(run_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        if not line.startswith("serving "):
            process.kill()
            pytest.fail(f"mnistlab serve did not start: {line}{process.stderr.read()}")
        url = line.split(" on ")[1].split()[0].rstrip("/")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


def drawn_digit(index: int = 0, format: str = "PNG") -> bytes:
    """A `digits` test image drawn large, dark on white, off-center."""
    digits = load_dataset("digits")
    ink = digits.x_test[index].astype(np.float64) / 16
    picture = Image.fromarray((255 - ink * 255).astype(np.uint8)).resize((96, 96))
    paper = Image.new("RGB", (200, 160), "white")
    paper.paste(picture, (70, 20))
    buffer = io.BytesIO()
    paper.save(buffer, format=format)
    return buffer.getvalue()


def test_the_page_is_self_contained(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    page = response.text
    assert "<canvas" in page and "pointerdown" in page and 'type="file"' in page
    assert not re.search(r"(src|href)\s*=\s*[\"'](https?:)?//", page)  # nothing from elsewhere
    assert "http://" not in page and "https://" not in page


def test_model_info(client):
    info = client.get("/api/model").json()
    assert info["model"] == "mlp" and info["dataset"] == "digits"
    assert info["classes"] == [str(d) for d in range(10)]
    assert info["image_shape"] == [8, 8] and info["preprocess"] == "digits"
    assert 0.5 < info["test_accuracy"] <= 1 and "Total params" in info["summary"]


def test_predict_answers_what_predict_json_prints(client, run_dir, tmp_path, capsys):
    body = drawn_digit(0)
    (tmp_path / "digit.png").write_bytes(body)
    assert main(["predict", str(run_dir), str(tmp_path / "digit.png"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    answer = client.post("/api/predict", content=body, headers=PNG)
    assert answer.status_code == 200
    assert answer.json() == {**printed, "path": None}
    upload = client.post("/api/predict", files={"image": ("digit.png", body, "image/png")})
    assert upload.json() == {**printed, "path": "digit.png"}


def test_top_and_the_models_input(client, run_dir):
    body = drawn_digit(1, "JPEG")
    answer = client.post(
        "/api/predict?top=3&input=1", content=body, headers={"content-type": "image/jpeg"}
    ).json()
    assert len(answer["top"]) == 3 and answer["top"][0]["label"] == answer["label"]
    assert answer["input"].startswith("data:image/png;base64,")
    seen = read_gray(base64.b64decode(answer["input"].split(",", 1)[1]))
    expected = Predictor(run_dir).prepare(body)
    assert seen.shape == (8, 8) and np.abs(seen - expected).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(
    "body, content_type, status, message",
    [
        (b"hello", "image/png", 400, "image: not a readable image"),
        (b"", "image/png", 400, "image: empty (0 bytes)"),
        (drawn_digit()[:80], "image/png", 400, "image: truncated or corrupt image"),
        (b"%PDF-1.4", "application/pdf", 415, "Content-Type application/pdf is not a picture"),
        (b"x=1", "application/x-www-form-urlencoded", 415, "is not a picture"),
        (b"--x\r\n\r\n", "multipart/form-data; boundary=x", 400, "not a valid multipart body"),
        (b"x" * (MAX_BYTES + 1), "image/png", 413, "the limit is 5,242,880"),
        (np.ones((40, 40), np.uint8).tobytes(), "application/octet-stream", 400, "image: "),
    ],
    ids=["text", "empty", "truncated", "pdf", "form", "multipart", "too-large", "raw-pixels"],
)
def test_bad_bodies_get_json_errors_and_the_server_keeps_serving(
    client, body, content_type, status, message
):
    response = client.post("/api/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == status
    assert message in response.json()["error"]
    good = client.post("/api/predict", content=drawn_digit(), headers=PNG)
    assert good.status_code == 200


def test_a_multipart_body_without_a_file_and_a_bad_top(client):
    response = client.post("/api/predict", data={"note": "no file"}, files={})
    assert response.status_code in (400, 415)
    response = client.post(
        "/api/predict", files={"x": ("x.txt", b"", "text/plain")}, data={"a": "b"}
    )
    assert response.status_code == 400 and "x.txt: empty" in response.json()["error"]
    response = client.post("/api/predict?top=0", content=drawn_digit(), headers=PNG)
    assert response.status_code == 400 and "top must be" in response.json()["error"]
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/api/predict").status_code == 405


def test_concurrent_clients_get_each_their_own_answer(server):
    bodies = [drawn_digit(i) for i in range(8)]
    with httpx.Client(base_url=server, timeout=30) as http:
        alone = [http.post("/api/predict", content=b, headers=PNG).json() for b in bodies]

        def ask(index: int) -> dict:
            body = bodies[index % 8]
            response = http.post("/api/predict", content=body, headers=PNG)
            return response.json()

        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(ask, range(64)))
        assert http.post("/api/predict", content=b"junk", headers=PNG).status_code == 400
    assert together == [alone[i % 8] for i in range(64)]


def test_serve_refuses_a_port_in_use_and_a_folder_that_is_not_a_run(run_dir, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "mnistlab", "serve", str(run_dir), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"mnistlab: error: --port {port}: 127.0.0.1:{port} is in use; choose another port "
        "(--port 0 takes any free one)"
    )
    assert main(["serve", str(tmp_path), "--port", "0"]) == 2


# ---------------------------------------------------------------- in a real browser


#: a "7" as strokes across the 280x280 canvas, in canvas pixels
SEVEN = [[(70, 60), (210, 60), (200, 90), (150, 170), (120, 235)], [(110, 140), (190, 140)]]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("chromium")
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
    with headless_chromium(tmp_path, (1000, 800), env) as driver:
        yield driver


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


@NEEDS_BROWSER
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
