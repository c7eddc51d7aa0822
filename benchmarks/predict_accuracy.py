"""`mnistlab predict` on pictures made the way people make them, against the model's test accuracy.

    python benchmarks/predict_accuracy.py fashion [--run RUN_DIR] [--n 1000]
    python benchmarks/predict_accuracy.py digits [--n 1000]

fashion: an MLP trained on Fashion-MNIST (`--run`, or one trained here: --hidden 256,128,
    --epochs 10). The first N test images are written as pictures: inverted (dark on white),
    enlarged 2-5x (bicubic), placed off-center on white paper of random size, saved as JPEG
    (quality 90). `mnistlab predict RUN --json` (the command itself, one process) classifies them.
digits: MNIST is not installed here, so an MNIST-style dataset is made: digits rendered from every
    TrueType font at hand (matplotlib's DejaVu, STIX and Computer Modern, and Debian's under
    /usr/share/fonts/truetype), turned by -20..20 degrees, slanted by -0.3..0.3, stretched
    0.7-1.3x in width, stroked 0-8% of their size thicker; each normalized as MNIST was, by its
    own code here (the ink scaled into 20x20 with Lanczos, centered by its center of mass with a
    subpixel shift, scipy.ndimage): 12,000 training and N test images in an IDX folder. An MLP
    is trained on it with `mnistlab train`; the same N test digits are then drawn black on white
    at glyph heights of 24-160 pixels, anywhere on paper of random size, as PNG and JPEG, and
    classified with `mnistlab predict`.

Each prints the model's accuracy on the N test images as stored, predict's accuracy on the
pictures, and how far the image predict made of each picture (--save-input) lies from the stored
test image it came from: the mean absolute difference of their pixels, on a 0..1 scale.
Everything is written to a temporary folder, removed at the end.

Measured on this machine (2 cores, other work sharing it), N = 1,000:
    fashion: model 784-256-128-10, 10 epochs (test accuracy 0.8820 on all 10,000)
        stored 0.8900, predict on the JPEGs 0.8820; mean |seen - stored| 0.0537
    digits: 48 fonts, the dataset measured as mnist style (data.preprocess.measure_style)
        stored 0.9980, predict on the drawings 0.9920; mean |seen - stored| 0.0297
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from mnistlab.data import load_dataset
from mnistlab.data.idx import write_idx
from mnistlab.data.preprocess import preprocess_meta


def mnistlab(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mnistlab", *args], capture_output=True, text=True, check=False
    )
    if result.returncode not in (0, 2):
        sys.exit(f"mnistlab {' '.join(args[:3])} ... failed:\n{result.stderr}")
    return result.stdout


def predict_accuracy(
    run: Path, pictures: list[Path], labels: np.ndarray, stored: np.ndarray, *extra: str
) -> tuple[float, float]:
    """predict's accuracy on `pictures`, and the mean absolute difference (in [0, 1] pixel
    levels) between the image it saw for each picture and the stored test image it was made
    from."""
    seen = pictures[0].parent / "seen"
    lines = mnistlab(
        "predict", str(run), *map(str, pictures), "--json", "--save-input", str(seen), *extra
    ).splitlines()
    predicted = {answer["path"]: answer["label"] for answer in map(json.loads, lines)}
    correct = [predicted.get(str(p), -1) == y for p, y in zip(pictures, labels, strict=True)]
    differences = [
        np.abs(np.asarray(Image.open(seen / f"{p.stem}.png"), np.float64) - image).mean() / 255
        for p, image in zip(pictures, stored.astype(np.float64), strict=True)
    ]
    return float(np.mean(correct)), float(np.mean(differences))


def stored_accuracy(run: Path, images: np.ndarray, labels: np.ndarray, pixel_max: float) -> float:
    from mnistlab.models import load_model

    x = images.reshape(len(images), -1).astype(np.float32) / pixel_max
    return float(np.mean(load_model(run).predict(x) == labels))


# ---------------------------------------------------------------- Fashion-MNIST


def fashion(n: int, run: Path | None, folder: Path) -> None:
    data = load_dataset("fashion-mnist")
    if run is None:
        run = folder / "fashion-run"
        mnistlab(
            "train",
            "--dataset",
            "fashion-mnist",
            "--hidden",
            "256,128",
            "--epochs",
            "10",
            "--quiet",
            "--out",
            str(run),
        )
    rng = np.random.default_rng(0)
    pictures = []
    for index in range(n):
        ink = Image.fromarray(255 - data.x_test[index])  # inverted: dark on white
        side = int(28 * rng.uniform(2, 5))
        ink = ink.resize((side, side), Image.Resampling.BICUBIC)
        paper = Image.new(
            "L", (side + int(rng.integers(20, 200)), side + int(rng.integers(20, 200))), 255
        )
        paper.paste(
            ink,
            (int(rng.integers(0, paper.width - side)), int(rng.integers(0, paper.height - side))),
        )
        path = folder / f"fashion{index:04d}.jpg"
        paper.convert("RGB").save(path, quality=90)
        pictures.append(path)
    labels, images = data.y_test[:n], data.x_test[:n]
    accuracy, difference = predict_accuracy(run, pictures, labels, images)
    print(
        f"fashion: stored {stored_accuracy(run, images, labels, 255):.4f}, predict on the "
        f"JPEGs {accuracy:.4f} (N = {n:,}); mean |seen - stored| {difference:.4f}"
    )


# ---------------------------------------------------------------- MNIST-style digits


#: fonts whose code points for "0".."9" hold symbols (big delimiters, set operators)
NOT_DIGITS = ("cmex10", "cmsy10")


def fonts() -> list[Path]:
    """Every TrueType font at hand (one file per name) whose digits are ten different glyphs."""
    paths = sorted(Path(matplotlib.get_data_path(), "fonts", "ttf").glob("*.ttf"))
    paths += sorted(Path("/usr/share/fonts/truetype").glob("*/*.ttf"))
    by_name = {path.stem: path for path in paths if path.stem not in NOT_DIGITS}
    usable = []
    for path in by_name.values():
        font = ImageFont.truetype(str(path), 64)
        glyphs = [np.asarray(render_glyph(font, str(d), 0, 0, 1.0)).tobytes() for d in range(10)]
        if len(set(glyphs)) == 10 and all(len(g) > 100 for g in glyphs):
            usable.append(path)
    return usable


def render_glyph(
    font, digit: str, angle: float, stroke: int, stretch: float, shear: float = 0.0
) -> Image.Image:
    """The digit, light on dark, turned, slanted, stretched and cropped to its ink."""
    size = font.size
    canvas = Image.new("L", (3 * size, 3 * size), 0)
    ImageDraw.Draw(canvas).text(
        (size, size // 2), digit, fill=255, font=font, stroke_width=stroke, stroke_fill=255
    )
    canvas = canvas.rotate(angle, Image.Resampling.BICUBIC)
    slant = (1, shear, -shear * canvas.height / 2, 0, 1, 0)
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, slant, Image.Resampling.BICUBIC)
    width = max(1, int(canvas.width * stretch))
    canvas = canvas.resize((width, canvas.height), Image.Resampling.BICUBIC)
    box = canvas.getbbox()
    return canvas.crop(box) if box else canvas


def samples(count: int, font_paths: list[Path], rng) -> list[tuple]:
    return [
        (
            font_paths[rng.integers(len(font_paths))],
            str(rng.integers(10)),
            rng.uniform(-20, 20),
            rng.uniform(0, 0.08),
            rng.uniform(0.7, 1.3),
            rng.uniform(-0.3, 0.3),
        )
        for _ in range(count)
    ]


def draw(sample: tuple, size: int) -> Image.Image:
    path, digit, angle, stroke, stretch, shear = sample
    font = ImageFont.truetype(str(path), size)
    return render_glyph(font, digit, angle, round(stroke * size), stretch, shear)


def mnist_normalized(glyph: Image.Image) -> np.ndarray:
    """MNIST's normalization, written independently of mnistlab: 20x20 box, center of mass."""
    scale = 20 / max(glyph.size)
    width, height = max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))
    small = np.asarray(glyph.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float64)
    canvas = np.zeros((28, 28))
    top, left = (28 - height) // 2, (28 - width) // 2
    canvas[top : top + height, left : left + width] = small
    cy, cx = ndimage.center_of_mass(canvas)
    canvas = ndimage.shift(canvas, (13.5 - cy, 13.5 - cx), order=1)
    return np.clip(canvas, 0, 255).round().astype(np.uint8)


def digits(n: int, folder: Path) -> None:
    rng = np.random.default_rng(0)
    font_paths = fonts()
    train, test = samples(12_000, font_paths, rng), samples(n, font_paths, rng)
    data = folder / "mnist-style"
    data.mkdir()
    for split, items in (("train", train), ("t10k", test)):
        images = np.stack([mnist_normalized(draw(s, 96)) for s in items])
        labels = np.array([int(s[1]) for s in items], dtype=np.uint8)
        write_idx(data / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(data / f"{split}-labels-idx1-ubyte.gz", labels)
    run = folder / "digits-run"
    mnistlab(
        "train",
        "--dataset",
        str(data),
        "--hidden",
        "256,128",
        "--epochs",
        "10",
        "--quiet",
        "--out",
        str(run),
    )
    pictures = []
    for index, sample in enumerate(test):
        glyph = draw(sample, int(rng.integers(24, 161)))
        ink = Image.eval(glyph, lambda v: 255 - v)  # black on white
        paper = Image.new(
            "L",
            (glyph.width + int(rng.integers(10, 300)), glyph.height + int(rng.integers(10, 300))),
            255,
        )
        paper.paste(
            ink,
            (
                int(rng.integers(0, paper.width - glyph.width + 1)),
                int(rng.integers(0, paper.height - glyph.height + 1)),
            ),
        )
        path = folder / f"digit{index:04d}.{'png' if index % 2 else 'jpg'}"
        paper.convert("RGB").save(path)
        pictures.append(path)
    stored = load_dataset(str(data))
    labels, images = stored.y_test[:n], stored.x_test[:n]
    # the style a run records for this dataset (mnistlab.data.preprocess.preprocess_meta);
    # given to predict outright for runs whose dataset.json does not record it yet
    style = preprocess_meta(stored)["preprocess"]
    accuracy, difference = predict_accuracy(run, pictures, labels, images, "--preprocess", style)
    print(
        f"digits ({len(font_paths)} fonts, measured style {style}): stored "
        f"{stored_accuracy(run, images, labels, 255):.4f}, predict on the drawings "
        f"{accuracy:.4f} (N = {n:,}); mean |seen - stored| {difference:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=("fashion", "digits"))
    parser.add_argument("--run", type=Path, help="fashion: a trained Fashion-MNIST run folder")
    parser.add_argument("--n", type=int, default=1000, help="test pictures (default 1,000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.experiment == "fashion":
            fashion(args.n, args.run, Path(tmp))
        else:
            digits(args.n, Path(tmp))


if __name__ == "__main__":
    main()
