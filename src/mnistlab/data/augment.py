"""Data augmentation: random affine transforms, elastic distortion, flips and pixel dropout of
image minibatches.

`parse_augment` turns the ``--augment`` option (``"shift=2,rotate=10,flip=1"``), a TOML table or
a dict into a normalized specification, refusing a bad key or value in one line. An `Augmenter`
applies that specification to a minibatch of rows of pixels, drawing every random number from
the numpy Generator it is handed, so that the caller decides what the randomness depends on (the
trainer seeds one Generator per minibatch from the seed, the epoch and the step: see
mnistlab.train.trainer).

Every transform is one inverse mapping: for each output pixel the augmenter computes where it
comes from in the input image (rotation, zoom, mirror and translation about the image's centre,
plus an elastic displacement) and reads the input there by bilinear interpolation. One sampling
pass, whatever the combination, so the image is blurred once rather than once per transform;
inverse mapping leaves no holes in the output, which forward mapping of the pixels would.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mnistlab.errors import UsageError

#: the keys of a specification and their values when not given (all off)
AUGMENT_DEFAULTS: dict = {
    "shift": 0,
    "rotate": 0.0,
    "scale": 0.0,
    "elastic": 0.0,
    "elastic_sigma": 4.0,
    "flip": False,
    "pixel_dropout": 0.0,
}
#: how errors name the specification (the option and the configuration key)
OPTION = "--augment"
#: words that turn augmentation off in a string (a TOML file has no null to write)
OFF_WORDS = ("", "none", "off")
#: each numeric key's range (low, high, whether high itself is allowed) and its unit
_RANGES = {
    "rotate": (0.0, 180.0, True, " degrees"),
    "scale": (0.0, 1.0, False, " (a relative zoom: 0.1 is 90% to 110%)"),
    "elastic": (0.0, 1000.0, True, " pixels"),
    "elastic_sigma": (0.0, 100.0, True, " pixels"),
    "pixel_dropout": (0.0, 1.0, False, " (a probability per pixel)"),
}
_TRUE_WORDS, _FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_augment(value) -> dict | None:
    """The normalized augmentation specification of `value`, or None for no augmentation.

    value: None; a string ``"shift=2,rotate=10,scale=0.1,elastic=34,flip=1"`` (the form of
    ``--augment`` and of a TOML string; a bare ``flip`` means flip=1; ``"none"`` turns it off);
    or a dict of the same keys. Returns every key of AUGMENT_DEFAULTS: shift (int pixels),
    rotate (degrees), scale (relative zoom), elastic (alpha, pixels), elastic_sigma (pixels),
    flip (bool), pixel_dropout (probability). Raises UsageError, one line naming the option
    and the value, for an unknown key, a repeated key, or a value of the wrong type or out of
    range.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() in OFF_WORDS:
            return None
        items = _split(value)
    elif isinstance(value, dict):
        if not value:
            return None
        items = list(value.items())
    else:
        raise UsageError(
            f"{OPTION} must be KEY=VALUE,... like shift=2,rotate=10 or a table of those keys, "
            f"got {value!r}"
        )
    spec = dict(AUGMENT_DEFAULTS)
    seen: set = set()
    for key, raw in items:
        if key not in AUGMENT_DEFAULTS:
            raise UsageError(
                f"{OPTION}: unknown key {key!r} (valid: {', '.join(AUGMENT_DEFAULTS)})"
            )
        if key in seen:
            raise UsageError(f"{OPTION}: key {key!r} is given twice, in {value!r}")
        seen.add(key)
        spec[key] = _parse_value(key, raw)
    return spec


def _split(text: str) -> list[tuple[str, str]]:
    """[(key, value text)] of ``"k=v,k=v"``; a bare ``flip`` is flip=1."""
    items = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise UsageError(f"{OPTION} {text}: an empty item; write KEY=VALUE,KEY=VALUE")
        key, sep, raw = part.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep and key == "flip":
            raw = "1"
        elif not sep or not raw:
            raise UsageError(f"{OPTION} {part}: needs a value, as in {key or 'shift'}=2")
        items.append((key, raw))
    return items


def _parse_value(key: str, raw):
    """The checked value of `key` from its text (string form) or its value (dict form)."""
    shown = f"{OPTION} {key}={raw}"
    if key == "flip":
        return _parse_flip(raw, shown)
    if key == "shift":
        return _parse_shift(raw, shown)
    number = _number(raw)
    if number is None:
        raise UsageError(f"{shown}: must be a number")
    low, high, high_allowed, unit = _RANGES[key]
    positive = key == "elastic_sigma"  # a Gaussian of width 0 does not smooth
    below = number <= low if positive else number < low
    above = number > high if high_allowed else number >= high
    if below or above:
        left = "(" if positive else "["
        right = "]" if high_allowed else ")"
        raise UsageError(f"{shown}: must be in {left}{low:g}, {high:g}{right}{unit}")
    return float(number)


def _number(raw) -> float | None:
    """A finite float from a number or its text; None otherwise (bools are not numbers)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float, np.integer, np.floating)):
        number = float(raw)
    elif isinstance(raw, str):
        try:
            number = float(raw)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _parse_shift(raw, shown: str) -> int:
    number = _number(raw)
    if number is None or not number.is_integer() or number < 0:
        raise UsageError(f"{shown}: must be a whole number of pixels >= 0")
    return int(number)


def _parse_flip(raw, shown: str) -> bool:
    if isinstance(raw, (bool, np.bool_)):
        return bool(raw)
    text = str(raw).strip().lower() if isinstance(raw, (str, int, np.integer)) else None
    if text in _TRUE_WORDS:
        return True
    if text in _FALSE_WORDS:
        return False
    raise UsageError(f"{shown}: must be 1 or 0 (true or false)")


class Augmenter:
    """Random transforms of minibatches of images, as a normalized specification describes.

    spec: parse_augment's dict (or anything parse_augment takes); image_shape: (height, width,
    channels) of the rows' images, channels last (rows are NHWC images flattened).

    Per image, independently: a rotation by an angle uniform in [-rotate, rotate] degrees, a
    zoom by a factor uniform in [1 - scale, 1 + scale], a horizontal mirror with probability
    1/2 (flip), a translation by whole pixels uniform in [-shift, shift] on each axis, and an
    elastic displacement (Simard et al. 2003: a field of uniform [-1, 1] offsets smoothed by a
    Gaussian of width elastic_sigma and scaled by elastic). Pixels that come from outside the
    image are 0, the datasets' background. Then each pixel of the result is set to the
    background with probability pixel_dropout (dropout on the input, as Srivastava et al. 2014
    use it for MLPs), independently per pixel and image.
    """

    def __init__(self, spec, image_shape) -> None:
        self.spec = parse_augment(spec) if not _is_normalized(spec) else dict(spec)
        if self.spec is None:
            self.spec = dict(AUGMENT_DEFAULTS)
        height, width, channels = (int(side) for side in image_shape)
        self.image_shape = (height, width, channels)
        # one augmenter serves one thread at a time (the one that gathers the minibatches)
        self._workspace: WarpWorkspace | None = None
        shift = self.spec["shift"]
        if shift >= max(height, width):
            raise UsageError(
                f"{OPTION} shift={shift}: must be smaller than the images ({height} x {width})"
            )

    @property
    def identity(self) -> bool:
        """Whether every transform is off (the augmenter then copies its input)."""
        spec = self.spec
        return not (self._moves or spec["pixel_dropout"])

    @property
    def _moves(self) -> bool:
        """Whether a transform moves pixels (any but pixel dropout is on)."""
        spec = self.spec
        return bool(
            spec["shift"] or spec["rotate"] or spec["scale"] or spec["elastic"] or spec["flip"]
        )

    def __call__(self, rows: np.ndarray, rng: np.random.Generator, out=None) -> np.ndarray:
        """Augment a minibatch: rows (n, height * width * channels) float32 or float64.

        Writes into `out` (same shape and dtype; it may be `rows` itself, for in place) or a new
        array, and returns it. Every random number comes from `rng`, drawn in a fixed order, so
        the same Generator state gives the same output bit for bit.
        """
        if out is None:
            out = np.empty_like(rows)
        if not self._moves:
            if out is not rows:
                np.copyto(out, rows)
        else:
            matrix, offset = self.draw_affine(rows.shape[0], rng)
            displacement = self.draw_elastic(rows.shape[0], rng, rows.dtype)
            if self._workspace is None or not self._workspace.fits(rows.shape[0], rows.dtype):
                self._workspace = WarpWorkspace(self.image_shape, rows.shape[0], rows.dtype)
            warp(
                rows,
                self.image_shape,
                matrix,
                offset,
                displacement=displacement,
                out=out,
                workspace=self._workspace,
            )
        if self.spec["pixel_dropout"]:
            # drawn after the transforms' numbers, so that a specification without it draws
            # exactly what it drew before the key existed
            kept = rng.random(out.shape, dtype=out.dtype) >= self.spec["pixel_dropout"]
            np.multiply(out, kept, out=out)
        return out

    def draw_affine(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(matrix (n, 2, 2), offset (n, 2)) of the inverse maps, output pixel -> input pixel,
        in (row, column) coordinates about the image's centre (see `warp`)."""
        spec = self.spec
        angle = np.deg2rad(rng.uniform(-spec["rotate"], spec["rotate"], n))
        zoom = rng.uniform(1.0 - spec["scale"], 1.0 + spec["scale"], n)
        mirror = np.where(rng.random(n) < 0.5, -1.0, 1.0) if spec["flip"] else np.ones(n)
        shift = rng.integers(-spec["shift"], spec["shift"] + 1, (n, 2))
        # Sampling needs the inverse map: an output pixel, mirrored, turned by -angle and shrunk
        # by 1/zoom about the centre, lands where the forward transform (zoom by `zoom`, turn by
        # `angle`, mirror) took its content from.
        cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
        matrix = np.empty((n, 2, 2))
        matrix[:, 0, 0], matrix[:, 0, 1] = cos, sin * mirror
        matrix[:, 1, 0], matrix[:, 1, 1] = -sin, cos * mirror
        # a translation by +shift moves the content by +shift: the output reads at -shift
        return matrix, -shift.astype(np.float64)

    def draw_elastic(self, n: int, rng: np.random.Generator, dtype) -> np.ndarray | None:
        """(n, 2, height, width) displacements in pixels (rows, columns), or None when elastic
        is off: uniform [-1, 1) noise smoothed by a Gaussian of width elastic_sigma and scaled
        by alpha, as Simard et al. do (alpha 34, sigma 4 on MNIST); the Gaussian's width sets
        how far apart pixels move together, alpha how far they move.

        scipy.ndimage smooths the whole batch in one call, over the two image axes, without
        BLAS: a matrix product here would run in NumPy's BLAS pool from the gathering thread,
        beside the training step's own GEMMs. mode="constant": the field fades to no
        displacement beyond the border.
        """
        alpha, sigma = self.spec["elastic"], self.spec["elastic_sigma"]
        if not alpha:
            return None
        from scipy.ndimage import gaussian_filter  # SciPy's import, only where elastic is on

        height, width, _ = self.image_shape
        dtype = np.dtype(dtype)
        # drawn in the images' dtype: float32 draws and smoothing cost half the float64 ones
        noise = rng.random((n, 2, height, width), dtype=dtype)
        noise *= 2
        noise -= 1
        field = gaussian_filter(noise, sigma=(0, 0, sigma, sigma), mode="constant")
        field *= dtype.type(alpha)
        return field


def _whole(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values)))


def _is_normalized(spec) -> bool:
    return isinstance(spec, dict) and set(spec) == set(AUGMENT_DEFAULTS)


def warp(
    rows: np.ndarray,
    image_shape,
    matrix: np.ndarray,
    offset: np.ndarray,
    *,
    displacement: np.ndarray | None = None,
    out: np.ndarray | None = None,
    workspace: WarpWorkspace | None = None,
) -> np.ndarray:
    """Resample each image of `rows` through an inverse affine map, bilinearly.

    rows: (n, height * width * channels) NHWC images flattened; matrix: (n, 2, 2); offset:
    (n, 2); displacement: (n, 2, height, width) or None. Output pixel p = (row, column), taken
    about the centre c = ((height - 1) / 2, (width - 1) / 2), reads the input at
    ``matrix @ (p - c) + c + offset + displacement[:, :, p]``; pixels read from outside the
    image are 0. Returns `out` (C-contiguous; it may be `rows`: the input is copied before
    anything is written), or a new array. workspace: buffers kept between calls (an Augmenter
    keeps one).

    Vectorized over the batch: the coordinates of every output pixel of every image are one
    (n, height * width) array, and each of the four neighbours is read by one gather.
    """
    n = rows.shape[0]
    out = np.empty_like(rows) if out is None else out
    if workspace is None or not workspace.fits(n, rows.dtype):
        workspace = WarpWorkspace(image_shape, n, rows.dtype)
    work = workspace.view(n)
    workspace.source_points(matrix, offset, work)
    if displacement is not None:
        work.source_y += displacement[:, 0].reshape(n, -1)
        work.source_x += displacement[:, 1].reshape(n, -1)
    workspace.pad(rows, work)
    height, width, channels = workspace.image_shape
    result = out.reshape(n, height * width, channels)
    # Whole-pixel maps (shifts and mirrors alone) land every source point on a pixel: the
    # interpolation weights are all 0 and would return the top-left neighbour unchanged, so
    # one gather gives the same values bit for bit.
    if displacement is None and _whole(matrix) and _whole(offset):
        workspace.neighbours(work, corners=1)
        np.copyto(result, work.values[0], casting="unsafe")
        return out
    workspace.neighbours(work)
    top_left, top_right, bottom_left, bottom_right = work.values
    # Bilinear, with fractions (fy, fx) of the source point past its top-left neighbour:
    #   top = tl + fx (tr - tl),  bottom = bl + fx (br - bl),  value = top + fy (bottom - top)
    # (the right neighbours' buffers receive top and bottom; one multiply per term)
    weight_x = work.source_x[..., None]  # the fractions fx, once neighbours() has run
    top_right -= top_left
    top_right *= weight_x
    top_right += top_left
    bottom_right -= bottom_left
    bottom_right *= weight_x
    bottom_right += bottom_left
    bottom_right -= top_right
    bottom_right *= work.source_y[..., None]
    np.add(top_right, bottom_right, out=result, casting="unsafe")
    return out


@dataclasses.dataclass
class _Work:
    """A workspace's buffers cut to a batch of n images."""

    source_y: np.ndarray
    source_x: np.ndarray
    floor: np.ndarray
    floor_x: np.ndarray
    index: np.ndarray
    padded: np.ndarray
    values: list[np.ndarray]


class WarpWorkspace:
    """The buffers of `warp` for batches of up to `capacity` images, kept between minibatches
    so that a step allocates nothing (fresh arrays of this size cost a page fault per page).

    The coordinates are computed in the images' dtype; the flat gather index in float64 when
    the batch's bordered images hold 2**24 pixels or more (float32 counts exactly only below).
    """

    def __init__(self, image_shape, capacity: int, dtype) -> None:
        height, width, channels = (int(side) for side in image_shape)
        self.image_shape = (height, width, channels)
        self.capacity, self.dtype = capacity, np.dtype(dtype)
        self.padded_width = width + 3
        self.image_pixels = (height + 3) * self.padded_width
        total = capacity * self.image_pixels
        index_dtype = self.dtype if total < 2**24 else np.dtype(np.float64)
        pixels = height * width
        self._source_y = np.empty((capacity, pixels), self.dtype)
        self._source_x = np.empty((capacity, pixels), self.dtype)
        self._floor = np.empty((capacity, pixels), index_dtype)
        self._floor_x = np.empty((capacity, pixels), index_dtype)
        # intp: np.take converts any other index type to it first, a pass over the index
        self._index = np.empty((capacity, pixels), np.intp)
        self._padded = np.zeros((capacity, height + 3, width + 3, channels), self.dtype)
        self._values = [np.empty((capacity, pixels, channels), self.dtype) for _ in range(4)]
        grid_y, grid_x = np.mgrid[0:height, 0:width]
        self.centre = ((height - 1) / 2.0, (width - 1) / 2.0)
        self._grid_y = (grid_y.ravel() - self.centre[0]).astype(self.dtype)[None, :]
        self._grid_x = (grid_x.ravel() - self.centre[1]).astype(self.dtype)[None, :]
        # where each image's first pixel sits in the flat bordered batch, plus one row and
        # column of border
        first = np.arange(capacity) * self.image_pixels + self.padded_width + 1
        self._image_start = first.astype(index_dtype)[:, None]

    def fits(self, n: int, dtype) -> bool:
        return n <= self.capacity and np.dtype(dtype) == self.dtype

    def view(self, n: int) -> _Work:
        return _Work(
            self._source_y[:n],
            self._source_x[:n],
            self._floor[:n],
            self._floor_x[:n],
            self._index[:n],
            self._padded[:n],
            [values[:n] for values in self._values],
        )

    def source_points(self, matrix, offset, work: _Work) -> None:
        """work.source_y, source_x = matrix @ (p - c) + c + offset for every output pixel p."""
        dtype, temporary = self.dtype, work.floor
        for axis, source in enumerate((work.source_y, work.source_x)):
            np.multiply(matrix[:, axis, :1].astype(dtype), self._grid_y, out=source)
            np.multiply(matrix[:, axis, 1:].astype(dtype), self._grid_x, out=temporary)
            source += temporary
            source += (offset[:, axis : axis + 1] + self.centre[axis]).astype(dtype)

    def pad(self, rows: np.ndarray, work: _Work) -> None:
        """The images into the bordered buffer, whose border stays 0."""
        height, width, channels = self.image_shape
        images = rows.reshape(rows.shape[0], height, width, channels)
        work.padded[:, 1 : height + 1, 1 : width + 1] = images

    def neighbours(self, work: _Work, corners: int = 4) -> None:
        """Gather the four neighbours (or the top-left one alone, corners=1) of each source
        point into work.values; leave the fractional positions between them in work.source_y
        and work.source_x.

        A source point outside the image is clipped to one pixel beyond its edge: there, both of
        its neighbours on that axis lie in the zero border (one row and column before the
        image, two after), so it reads 0, the background, without a mask.
        """
        height, width, channels = self.image_shape
        np.clip(work.source_y, -1, height, out=work.source_y)
        np.clip(work.source_x, -1, width, out=work.source_x)
        floor_y, floor_x, index = work.floor, work.floor_x, work.index
        np.floor(work.source_y, out=floor_y)
        np.floor(work.source_x, out=floor_x)
        work.source_y -= floor_y
        work.source_x -= floor_x
        # the flat index of each top-left neighbour in the bordered batch
        floor_y *= self.padded_width
        floor_y += floor_x
        floor_y += self._image_start[: index.shape[0]]
        np.copyto(index, floor_y, casting="unsafe")  # whole numbers: the cast is exact
        # one channel: a 1-D gather, faster than gathering rows of one value
        flat = work.padded.reshape(-1) if channels == 1 else work.padded.reshape(-1, channels)
        axis = 0 if channels > 1 else None
        # top left, top right, bottom left, bottom right; mode="clip" gathers straight into
        # `out` (the default mode gathers into a temporary first); every index is in range
        steps = (0, 1, self.padded_width - 1, 1)
        for step, values in zip(steps[:corners], work.values[:corners], strict=True):
            if step:
                index += step
            target = values if channels > 1 else values.reshape(values.shape[0], -1)
            np.take(flat, index, axis=axis, out=target, mode="clip")
