"""Data augmentation: the --augment specification and its errors, and what each transform does
to known images."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.data.augment import AUGMENT_DEFAULTS, Augmenter, parse_augment, warp
from mnistlab.errors import UsageError

# ------------------------------------------------------------------ the specification


def test_parse_a_string_a_dict_and_off():
    spec = parse_augment("shift=2, rotate=10,scale=0.1,elastic=34,flip")
    assert spec == {
        "shift": 2,
        "rotate": 10.0,
        "scale": 0.1,
        "elastic": 34.0,
        "elastic_sigma": 4.0,
        "flip": True,
        "pixel_dropout": 0.0,
    }
    assert parse_augment({"shift": 1, "flip": True}) == {
        **AUGMENT_DEFAULTS,
        "shift": 1,
        "flip": True,
    }
    assert parse_augment("elastic=8,elastic_sigma=3,flip=0")["elastic_sigma"] == 3.0
    for off in (None, "", "none", "OFF", {}):
        assert parse_augment(off) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("shfit=2", "--augment: unknown key 'shfit' (valid: shift, rotate, scale, elastic, "),
        ({"zoom": 0.1}, "--augment: unknown key 'zoom'"),
        ("rotate=400", "--augment rotate=400: must be in [0, 180] degrees"),
        ("rotate=-5", "--augment rotate=-5: must be in [0, 180] degrees"),
        ("rotate=ten", "--augment rotate=ten: must be a number"),
        ("rotate=nan", "--augment rotate=nan: must be a number"),
        ("scale=1", "--augment scale=1: must be in [0, 1)"),
        ("shift=1.5", "--augment shift=1.5: must be a whole number of pixels >= 0"),
        ("shift=-1", "--augment shift=-1: must be a whole number of pixels >= 0"),
        ({"shift": True}, "--augment shift=True: must be a whole number of pixels >= 0"),
        ("elastic=-1", "--augment elastic=-1: must be in [0, 1000] pixels"),
        ("elastic_sigma=0", "--augment elastic_sigma=0: must be in (0, 100] pixels"),
        ("flip=2", "--augment flip=2: must be 1 or 0 (true or false)"),
        ("pixel_dropout=1", "--augment pixel_dropout=1: must be in [0, 1) (a probability per"),
        ("pixel_dropout=-0.1", "--augment pixel_dropout=-0.1: must be in [0, 1)"),
        ("shift", "--augment shift: needs a value, as in shift=2"),
        ("shift=2,,flip", "--augment shift=2,,flip: an empty item"),
        ("shift=1,shift=2", "--augment: key 'shift' is given twice"),
        (3, "--augment must be KEY=VALUE,... like shift=2,rotate=10"),
    ],
)
def test_each_bad_key_or_value_is_one_line_naming_it(value, message):
    with pytest.raises(UsageError) as caught:
        parse_augment(value)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_a_shift_as_large_as_the_image_is_refused():
    with pytest.raises(UsageError, match=r"--augment shift=8: must be smaller than the images"):
        Augmenter("shift=8", (8, 8, 1))


# ------------------------------------------------------------------ the transforms


def _images(n=4, side=9, channels=1, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.random((n, side, side, channels)).astype(dtype)


def _rows(images):
    return images.reshape(len(images), -1)


def test_all_ranges_zero_is_the_identity():
    images = _images(dtype=np.float64)
    augmenter = Augmenter("shift=0,rotate=0,scale=0,elastic=0,flip=0,pixel_dropout=0", (9, 9, 1))
    assert augmenter.identity
    np.testing.assert_array_equal(augmenter(_rows(images), np.random.default_rng(0)), _rows(images))
    # the resampling itself, through the identity map, reads every pixel back unchanged
    identity = np.broadcast_to(np.eye(2), (4, 2, 2))
    out = warp(_rows(images), (9, 9, 1), identity, np.zeros((4, 2)))
    np.testing.assert_array_equal(out, _rows(images))


@pytest.mark.parametrize("shift", [1, 3])
def test_a_shift_moves_a_bright_pixel_by_at_most_k_whole_pixels(shift):
    image = np.zeros((1, 11, 11, 1), np.float32)
    image[0, 5, 5, 0] = 1.0
    rows = np.repeat(_rows(image), 200, axis=0)
    out = Augmenter(f"shift={shift}", (11, 11, 1))(rows, np.random.default_rng(1))
    moves = set()
    for row in out.reshape(-1, 11, 11):
        assert np.count_nonzero(row) == 1 and row.max() == 1.0  # moved whole, not blurred
        y, x = np.argwhere(row)[0]
        assert abs(y - 5) <= shift and abs(x - 5) <= shift
        moves.add((y - 5, x - 5))
    assert len(moves) == (2 * shift + 1) ** 2  # every move in range happens


def test_pixels_from_outside_the_image_are_background():
    rows = np.ones((50, 64), np.float32)
    shifted = Augmenter("shift=3", (8, 8, 1))(rows, np.random.default_rng(2)).reshape(-1, 8, 8)
    for image in shifted:
        # the image's ones, a (8 - |dy|) x (8 - |dx|) block, and zeros where it moved away
        rows_kept, cols_kept = image.any(axis=1).sum(), image.any(axis=0).sum()
        assert rows_kept >= 5 and cols_kept >= 5
        assert image.sum() == rows_kept * cols_kept
    assert (shifted == 0).any(axis=(1, 2)).sum() > 40
    turned = Augmenter("rotate=30,scale=0.2", (8, 8, 1))(rows, np.random.default_rng(2))
    assert turned.min() == 0.0 and turned.max() <= 1.0 + 1e-6


def test_a_rotation_by_90_degrees_is_rot90():
    images = _images(n=3, side=7, channels=2)
    angle = np.pi / 2  # the augmenter's inverse map for a turn by +90 degrees
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.broadcast_to(np.array([[cos, sin], [-sin, cos]]), (3, 2, 2))
    out = warp(_rows(images), (7, 7, 2), matrix, np.zeros((3, 2))).reshape(images.shape)
    np.testing.assert_allclose(out, np.rot90(images, 1, axes=(1, 2)), atol=1e-5)


def test_flip_mirrors_about_half_the_images_and_every_channel_alike():
    images = _images(n=64, side=6, channels=3)
    out = Augmenter("flip=1", (6, 6, 3))(_rows(images), np.random.default_rng(3))
    out = out.reshape(images.shape)
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images, strict=True)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 16 < sum(mirrored) < 48


def test_elastic_displaces_smoothly_and_keeps_values_in_range():
    rows = _rows(_images(n=8, side=12))
    augmenter = Augmenter("elastic=6,elastic_sigma=3", (12, 12, 1))
    field = augmenter.draw_elastic(8, np.random.default_rng(4), np.float32)
    assert field.shape == (8, 2, 12, 12) and field.dtype == np.float32
    # smoothed: neighbouring pixels move nearly together, far more than unsmoothed noise would
    assert np.abs(np.diff(field, axis=3)).mean() < 0.2 * np.abs(field).mean()
    out = augmenter(rows, np.random.default_rng(4))
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1 + 1e-6
    assert not np.array_equal(out, rows)


def test_pixel_dropout_sets_about_that_share_of_pixels_to_background_and_nothing_else():
    rows = np.random.default_rng(0).uniform(0.5, 1.0, size=(200, 64)).astype(np.float32)
    augmenter = Augmenter("pixel_dropout=0.25", (8, 8, 1))
    assert not augmenter.identity
    out = augmenter(rows, np.random.default_rng(3))
    dropped = out == 0
    assert 0.22 < dropped.mean() < 0.28
    np.testing.assert_array_equal(out[~dropped], rows[~dropped])
    np.testing.assert_array_equal(out, augmenter(rows, np.random.default_rng(3)))
    # after the other transforms, and their random numbers unchanged by it
    both = Augmenter("shift=1,flip=1,pixel_dropout=0.25", (8, 8, 1))
    moved = Augmenter("shift=1,flip=1", (8, 8, 1))(rows, np.random.default_rng(5))
    combined = both(rows, np.random.default_rng(5))
    kept = combined != 0
    np.testing.assert_array_equal(combined[kept], moved[kept])
    assert 0.2 < (combined[moved != 0] == 0).mean() < 0.3


def test_same_generator_same_output_and_in_place_equals_out():
    rows = _rows(_images(n=16, side=10, dtype=np.float64))
    augmenter = Augmenter(
        "shift=2,rotate=15,scale=0.1,elastic=4,flip=1,pixel_dropout=0.1", (10, 10, 1)
    )
    first = augmenter(rows, np.random.default_rng([7, 1, 2]))
    again = augmenter(rows, np.random.default_rng([7, 1, 2]))
    np.testing.assert_array_equal(first, again)
    in_place = rows.copy()
    augmenter(in_place, np.random.default_rng([7, 1, 2]), out=in_place)
    np.testing.assert_array_equal(in_place, first)
    assert first.dtype == np.float64
    other = augmenter(rows, np.random.default_rng([7, 2, 2]))
    assert not np.array_equal(first, other)
    # a smaller last minibatch reuses the buffers of the larger ones
    np.testing.assert_array_equal(
        augmenter(rows[:5], np.random.default_rng(9)),
        Augmenter(augmenter.spec, (10, 10, 1))(rows[:5], np.random.default_rng(9)),
    )


def test_whole_pixel_maps_take_the_one_gather_path_with_the_same_values():
    rows = _rows(_images(n=32, side=10))
    augmenter = Augmenter("shift=2,flip=1", (10, 10, 1))
    matrix, offset = augmenter.draw_affine(32, np.random.default_rng(6))
    fast = warp(rows, (10, 10, 1), matrix, offset)
    # a displacement of zeros sends the same map through the four-neighbour interpolation
    zeros = np.zeros((32, 2, 10, 10), np.float32)
    bilinear = warp(rows, (10, 10, 1), matrix, offset, displacement=zeros)
    np.testing.assert_array_equal(fast, bilinear)
