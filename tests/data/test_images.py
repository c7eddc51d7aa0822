"""read_gray: every picture format a user sends, and every picture it must refuse by name."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mnistlab.data.images import read_gray, to_png
from mnistlab.errors import DataError


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def test_reads_png_and_jpeg_as_gray_levels_in_0_1(tmp_path):
    picture = Image.new("RGB", (30, 20), (255, 255, 255))
    picture.paste((0, 0, 0), (5, 5, 10, 15))
    picture.save(tmp_path / "a.png")
    picture.save(tmp_path / "a.jpg", quality=95)
    for name in ("a.png", "a.jpg"):
        gray = read_gray(tmp_path / name)
        assert gray.shape == (20, 30) and gray.dtype == np.float32
        assert gray[10, 7] < 0.05 and gray[1, 1] > 0.95


def test_bytes_and_paths_give_the_same_image(tmp_path):
    picture = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    picture.save(tmp_path / "ramp.png")
    assert np.array_equal(read_gray(tmp_path / "ramp.png"), read_gray(encoded(picture, "PNG")))
    assert read_gray(tmp_path / "ramp.png")[0, 1] == pytest.approx(4 / 255)


def test_transparent_pixels_are_white_paper():
    picture = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # transparent black everywhere...
    picture.putpixel((1, 1), (0, 0, 0, 255))  # ...but one opaque black pixel of ink
    gray = read_gray(encoded(picture, "PNG"))
    assert gray[1, 1] == 0 and gray[0, 0] == 1


def test_exif_rotation_is_applied():
    picture = Image.new("L", (40, 20), 255)  # stored landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    gray = read_gray(encoded(picture, "JPEG", exif=exif.tobytes()))
    assert gray.shape == (40, 20)


def test_to_png_round_trips_gray_levels():
    image = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    back = read_gray(to_png(image))
    assert np.abs(back - image).max() <= 0.5 / 255 + 1e-7


def animated_gif() -> bytes:
    frames = [Image.new("L", (8, 8), level) for level in (0, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty (0 bytes), not an image"),
        (b"hello, world\n", "not a readable image"),
        (encoded(Image.new("RGB", (64, 64), "red"), "PNG")[:60], "truncated or corrupt image"),
        (encoded(Image.new("RGB", (64, 64), "red"), "JPEG")[:300], "truncated or corrupt image"),
        (animated_gif(), "has 2 frames (an animation or a multi-page file)"),
        (encoded(Image.new("I;16", (8, 8), 1000), "PNG"), "16-bit samples (mode I;16)"),
        (encoded(Image.new("CMYK", (8, 8), (0, 0, 0, 255)), "JPEG"), "a CMYK image"),
    ],
    ids=["empty", "text", "truncated-png", "truncated-jpeg", "animated", "16-bit", "cmyk"],
)
def test_refuses_what_it_cannot_read_naming_the_file(tmp_path, content, message):
    path = tmp_path / "picture.png"
    path.write_bytes(content)
    with pytest.raises(DataError, match="picture.png: ") as error:
        read_gray(path)
    assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(DataError, match="^upload: ") as error:
        read_gray(content, "upload")
    assert message in str(error.value)


def test_refuses_a_missing_file_a_folder_and_too_many_pixels(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="nothing.png: no such file"):
        read_gray(tmp_path / "nothing.png")
    with pytest.raises(DataError, match="is a folder, not an image"):
        read_gray(tmp_path)
    monkeypatch.setattr("mnistlab.data.images.MAX_PIXELS", 100)
    with pytest.raises(DataError, match="image: 20x20 is too many pixels"):
        read_gray(encoded(Image.new("L", (20, 20)), "PNG"))
