"""Preprocessing: a picture drawn or photographed any which way comes out as the training
images were made, in every style; and the style a dataset records."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import needs_fashion
from mnistlab.data import load_dataset, make_dataset
from mnistlab.data.preprocess import Preprocessing, measure_style, preprocess_meta
from mnistlab.errors import DataError, UsageError


def on_paper(ink: np.ndarray, canvas: tuple[int, int], top: int, left: int) -> np.ndarray:
    """`ink` (light on dark, [0, 1]) drawn dark on white paper of `canvas` size at (top, left)."""
    paper = np.ones(canvas, dtype=np.float32)
    paper[top : top + ink.shape[0], left : left + ink.shape[1]] = 1.0 - ink
    return paper


def enlarged(image: np.ndarray, factor: int) -> np.ndarray:
    size = (image.shape[1] * factor, image.shape[0] * factor)
    picture = Image.fromarray(image.astype(np.float32), mode="F")
    return np.clip(np.asarray(picture.resize(size, Image.Resampling.BICUBIC)), 0, 1)


def ring(size: int = 100) -> np.ndarray:
    ys, xs = np.indices((size, size))
    radius = np.hypot(ys - size / 2, (xs - size / 2) * 1.6)
    return ((radius > size * 0.28) & (radius < size * 0.4)).astype(np.float32)


def test_mnist_style_scales_into_20x20_and_centers_the_mass_wherever_the_ink_was():
    prep = Preprocessing("mnist", (28, 28))
    results = []
    for factor, top, left in [(1, 5, 5), (2, 40, 10), (3, 0, 90)]:
        picture = on_paper(enlarged(ring(), factor), (420, 420), top, left)
        image = prep(picture)
        rows, cols = np.flatnonzero(image.max(1) > 0.1), np.flatnonzero(image.max(0) > 0.1)
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)
        ys, xs = np.indices(image.shape)
        assert abs((ys * image).sum() / image.sum() - 13.5) <= 0.5
        assert abs((xs * image).sum() / image.sum() - 13.5) <= 0.5
        results.append(image)
    # the same ring, whatever its size and place on the paper
    assert np.abs(results[0] - results[1]).mean() < 0.03
    assert np.abs(results[0] - results[2]).mean() < 0.03


def test_pencil_on_grey_paper_becomes_full_white_ink_on_black():
    paper = 0.8 * on_paper(0.5 * ring(60), (80, 80), 10, 10)  # grey paper, faint ink
    image = Preprocessing("mnist", (28, 28))(paper)
    assert image.max() > 0.95 and image[0, 0] == 0


@needs_fashion
def test_fashion_style_undoes_inversion_enlargement_and_offset():
    fashion = load_dataset("fashion-mnist")
    prep = Preprocessing("fashion", (28, 28))
    errors = []
    for index in range(40):
        original = fashion.x_test[index].astype(np.float32) / 255
        picture = on_paper(enlarged(original, 3), (150, 130), 40, index)
        errors.append(np.abs(prep(picture) - original).mean())
    assert np.median(errors) < 0.06


def test_fashion_style_keeps_intensities_and_fills_the_frame():
    shirt = np.zeros((30, 20), dtype=np.float32)
    shirt[:, :] = 0.4  # a grey object, no ink at full white
    image = Preprocessing("fashion", (28, 28))(on_paper(shirt, (100, 100), 20, 50))
    rows = np.flatnonzero(image.max(1) > 0.05)
    assert rows[0] == 0 and rows[-1] == 27  # the longest side spans the frame
    assert image.max() == pytest.approx(0.4, abs=0.02)


def test_digits_style_gives_scikit_learns_8x8_counts():
    digits = load_dataset("digits")
    prep = Preprocessing("digits", (8, 8))
    errors = []
    for index in range(60):
        original = digits.x_test[index].astype(np.float32) / 16
        big = np.kron(original, np.ones((16, 16), dtype=np.float32))  # a 128x128 drawing
        errors.append(np.abs(prep(on_paper(big, (200, 260), 30, 70)) - original).mean())
    assert np.median(errors) < 0.06


def test_resize_keeps_a_light_background_when_the_training_images_had_one():
    picture = on_paper(ring(40), (40, 40), 0, 0)  # dark ink on white
    light = Preprocessing("resize", (10, 10), background="light")(picture)
    dark = Preprocessing("resize", (10, 10), background="dark")(picture)
    assert light.shape == (10, 10) and light[0, 0] > 0.9
    assert np.allclose(dark, 1 - light, atol=1e-6)


def test_invert_yes_and_no_override_the_guess():
    picture = on_paper(ring(28), (28, 28), 0, 0)
    assert Preprocessing("none", (28, 28), invert="no")(picture)[0, 0] == 1.0
    assert Preprocessing("none", (28, 28))(picture)[0, 0] == 0.0  # auto: to a dark background
    assert Preprocessing("none", (28, 28), invert="yes")(1 - picture)[0, 0] == 1.0


def test_none_needs_the_models_size():
    with pytest.raises(DataError, match=r"^x.png: is 40x30 pixels; --preprocess none needs the"):
        Preprocessing("none", (28, 28))(np.zeros((30, 40)), "x.png")


def test_a_blank_picture_is_refused():
    with pytest.raises(DataError, match="blank.png: the image is blank"):
        Preprocessing("mnist", (28, 28))(np.ones((50, 50)), "blank.png")


def test_unknown_names_are_refused_with_the_valid_ones():
    with pytest.raises(UsageError, match="unknown preprocess 'mnistish'; valid: mnist, fashion"):
        Preprocessing("mnistish")
    with pytest.raises(UsageError, match="unknown invert 'maybe'; valid: auto, yes, no"):
        Preprocessing(invert="maybe")


def test_from_run_reads_dataset_json_and_falls_back_for_older_runs():
    recorded = {"image_shape": [28, 28], "preprocess": "resize", "background": "light"}
    assert Preprocessing.from_run(recorded) == Preprocessing("resize", (28, 28), "light")
    assert Preprocessing.from_run(recorded, style="none").style == "none"
    for name, style in [("fashion-mnist", "fashion"), ("kmnist", "mnist"), ("mine", "mnist")]:
        assert Preprocessing.from_run({"image_shape": [28, 28], "name": name}).style == style
    older_png = {"image_shape": [28, 28], "name": "mine", "format": "png"}
    assert Preprocessing.from_run(older_png).style == "resize"


def test_preprocess_meta_names_or_measures_the_style():
    digits = load_dataset("digits")
    assert preprocess_meta(digits) == {"preprocess": "digits", "background": "dark"}
    glyph = np.asarray(Image.fromarray(ring(100) * 255).resize((20, 20)), dtype=np.float32)
    mnist_like = np.zeros((20, 28, 28), dtype=np.uint8)
    mnist_like[:, 4:24, 4:24] = glyph.astype(np.uint8)
    assert measure_style(mnist_like / 255.0) == "mnist"
    photos = np.full((20, 28, 28), 230, dtype=np.uint8)  # light, never normalized
    photos[:, 10:14, 3:9] = 20
    labels = np.arange(20) % 2
    mine = make_dataset("mine", photos, labels, photos, labels, where="mine")
    assert preprocess_meta(mine) == {"preprocess": "resize", "background": "light"}
