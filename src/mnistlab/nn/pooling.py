"""MaxPool2D and AvgPool2D over NHWC images: one strided view per window offset.

Neither pads: a window that would reach past the border is left out (PyTorch's default,
Keras's padding="valid"). Each loops over the pool_h * pool_w offsets of the window and works
on the (batch, out_h, out_w, channels) view of the inputs that offset meets (conv.offset_view),
so every NumPy call runs over whole rows of channels.
"""

from __future__ import annotations

import numpy as np

from mnistlab.errors import UsageError
from mnistlab.nn.base import Layer
from mnistlab.nn.conv import check_image_input, offset_view, pair
from mnistlab.nn.functional import image_chunks

__all__ = ["AvgPool2D", "MaxPool2D"]


#: bytes of input per chunk of images that a max pool works through at a time: small enough
#: that a chunk's output and marks are still in the core's cache when the next pass reads them
CHUNK_BYTES = 2 << 20


def _chunks(x: np.ndarray) -> list[slice]:
    """Slices of x's images, each about CHUNK_BYTES of x."""
    return image_chunks(x.shape[0], x[:1].nbytes, CHUNK_BYTES)


class _Pool2D(Layer):
    """What both pools share: sizes, the output shape, the offsets and the input gradient's
    buffer."""

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        stride: int | tuple[int, int] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.pool_size = pair(self.kind, "pool_size", pool_size)
        self.stride = self.pool_size if stride is None else pair(self.kind, "stride", stride)

    def build(self, input_shape, rng, dtype, blas=None):
        super().build(input_shape, rng, dtype, blas)
        height, width, channels = check_image_input(self.kind, self.input_shape)
        pool_h, pool_w = self.pool_size
        if pool_h > height or pool_w > width:
            raise UsageError(
                f"{self.kind} pool_size={self.pool_size} is larger than its input of "
                f"{(height, width)}: no output position is left"
            )
        self._out_size = (
            (height - pool_h) // self.stride[0] + 1,
            (width - pool_w) // self.stride[1] + 1,
        )
        self._offsets = list(np.ndindex(*self.pool_size))
        # Windows that overlap add their gradients into the input gradient; windows side by
        # side write them, and when they also cover every input nothing needs zeroing first.
        self._overlap = self.stride[0] < pool_h or self.stride[1] < pool_w
        self._tiles = self.stride == self.pool_size and height % pool_h == width % pool_w == 0
        self.output_shape = (*self._out_size, channels)
        return self.output_shape

    def config(self):
        return {"type": self.kind, "pool_size": list(self.pool_size), "stride": list(self.stride)}

    def _check(self, x: np.ndarray) -> None:
        if x.shape[1:] != self.input_shape:
            raise UsageError(
                f"{self.kind} was built for inputs {self.input_shape}, got x of shape {x.shape}"
            )

    def _view(self, array: np.ndarray, i: int, j: int) -> np.ndarray:
        """The inputs (or their gradients) that window offset (i, j) covers."""
        return offset_view(array, i, j, self.stride, self._out_size)

    def _combine(self, ufunc: np.ufunc, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = ufunc(ufunc(view_0, view_1), view_2) ... over the offsets' views of x."""
        first, *rest = (self._view(x, i, j) for i, j in self._offsets)
        if not rest:
            np.copyto(out, first)
            return out
        ufunc(first, rest[0], out=out)
        for view in rest[1:]:
            ufunc(out, view, out=out)
        return out

    def _grad_in(self, batch: int) -> np.ndarray:
        """The input gradient's buffer: zeroed where offsets overlap or miss some input."""
        grad_in = self._buffer("grad_in", (batch, *self.input_shape))
        if not self._tiles:
            grad_in.fill(0)
        return grad_in

    def _put(self, target: np.ndarray, values: np.ndarray) -> None:
        """target (an offset's view of the input gradient) receives values: added where windows
        overlap, written otherwise."""
        if self._overlap:
            target += values
        else:
            np.copyto(target, values)


class MaxPool2D(_Pool2D):
    """The maximum of each pool_h x pool_w window.

    The gradient goes to the window's maximum; where several inputs tie for it, to the first in
    row-major order within the window (one winner, as PyTorch chooses). An input that is the
    maximum of several overlapping windows receives the sum of their gradients.

    Parameters
    ----------
    pool_size : int or (int, int)
        The window's height and width.
    stride : int or (int, int) or None
        Steps between windows; None for the pool size (windows side by side).
    name : str or None
        Shown by Sequential.summary().

    Notes
    -----
    Shapes: x (batch, height, width, channels), y (batch, out_h, out_w, channels) with
    ``out_h = (height - pool_h) // stride_h + 1`` (likewise for the width).
    """

    kind = "MaxPool2D"
    #: backward compares the inputs with the output
    needs_output = True

    def forward(self, x, training=False):
        self._check(x)
        out = self._buffer("out", (x.shape[0], *self.output_shape))
        for part in _chunks(x):
            self._combine(np.maximum, x[part], out[part])
        self._x, self._y = x, out
        return out

    def backward(self, grad_out):
        if not self.needs_input_grad:
            return None
        if self._tiles and self._x.flags.c_contiguous:
            return self._tiled_backward(grad_out)
        grad_in = self._grad_in(grad_out.shape[0])
        winner = self._buffer("winner", grad_out.shape, dtype=bool)
        *earlier, last = self._offsets
        # Offsets in row-major order: each takes the gradient of the windows whose maximum it
        # holds, and what it takes is zeroed in grad_out (the next layer's work buffer), so
        # that a later offset that ties gets nothing. What is left at the end belongs to the
        # last offset: it holds the maximum of every window no earlier offset did (a window
        # holding NaN, whose maximum equals nothing, sends its gradient there too).
        for i, j in earlier:
            np.equal(self._view(self._x, i, j), self._y, out=winner)
            target = self._view(grad_in, i, j)
            if self._overlap:
                taken = np.multiply(grad_out, winner, out=self._buffer("taken", grad_out.shape))
                target += taken
            else:
                taken = np.multiply(grad_out, winner, out=target)
            grad_out -= taken
        self._put(self._view(grad_in, *last), grad_out)
        return grad_in

    def _tiled_backward(self, grad_out):
        """backward() for windows that tile the input (stride = pool size, sizes divisible):
        the same routing, in fewer passes over memory.

        With x seen as (batch, out_h, pool_h, out_w, pool_w, channels), one comparison with the
        output marks every window's maxima, the ties are settled on the marks (one byte each)
        in the same row-major order, and one multiplication by the broadcast gradient writes
        the whole input gradient. The per-offset route reads and writes the float arrays three
        times per offset, which costs twice the time on a 28x28x32 map. The batch goes through
        in chunks of images (CHUNK_BYTES), so that the marks are read back from the cache.
        """
        batch, (out_h, out_w), channels = grad_out.shape[0], self._out_size, grad_out.shape[-1]
        blocks = (batch, out_h, self.pool_size[0], out_w, self.pool_size[1], channels)
        winners = self._buffer("winners", blocks, dtype=bool)
        taken_all = self._buffer("taken_mask", grad_out.shape, dtype=bool)
        grad_in = self._buffer("grad_in", (batch, *self.input_shape))
        x_blocks, grad_blocks = self._x.reshape(blocks), grad_in.reshape(blocks)
        *earlier, (last_i, last_j) = self._offsets
        for part in _chunks(self._x):
            winner, taken = winners[part], taken_all[part]
            np.equal(x_blocks[part], self._y[part, :, None, :, None], out=winner)
            if earlier:
                (first_i, first_j), *middle = earlier
                np.copyto(taken, winner[:, :, first_i, :, first_j])
            else:
                middle = []
                taken.fill(False)
            for i, j in middle:
                mark = winner[:, :, i, :, j]
                np.greater(mark, taken, out=mark)  # a maximum, not taken by an earlier offset
                np.logical_or(taken, mark, out=taken)
            # The last offset takes every window no earlier one took, as the per-offset route.
            np.logical_not(taken, out=winner[:, :, last_i, :, last_j])
            np.multiply(winner, grad_out[part, :, None, :, None], out=grad_blocks[part])
        return grad_in


class AvgPool2D(_Pool2D):
    """The mean of each pool_h x pool_w window; every input of a window receives the window's
    gradient divided by pool_h * pool_w.

    Parameters
    ----------
    pool_size : int or (int, int)
        The window's height and width.
    stride : int or (int, int) or None
        Steps between windows; None for the pool size (windows side by side).
    name : str or None
        Shown by Sequential.summary().

    Notes
    -----
    Shapes: x (batch, height, width, channels), y (batch, out_h, out_w, channels) with
    ``out_h = (height - pool_h) // stride_h + 1`` (likewise for the width).
    """

    kind = "AvgPool2D"

    def forward(self, x, training=False):
        self._check(x)
        out = self._buffer("out", (x.shape[0], *self.output_shape))
        self._combine(np.add, x, out)
        out *= 1.0 / len(self._offsets)
        return out

    def backward(self, grad_out):
        if not self.needs_input_grad:
            return None
        grad_in = self._grad_in(grad_out.shape[0])
        grad_out *= 1.0 / len(self._offsets)  # the next layer's work buffer: scaled in place
        for i, j in self._offsets:
            self._put(self._view(grad_in, i, j), grad_out)
        return grad_in
