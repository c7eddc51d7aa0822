"""Conv2D: a 2-D convolution over NHWC images, as im2col and one GEMM.

Also the helpers that the pooling layers share: reading a pair of sizes (`pair`) and the strided
view of one kernel offset (`offset_view`).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mnistlab.errors import UsageError
from mnistlab.nn.base import Layer
from mnistlab.nn.functional import image_chunks
from mnistlab.nn.init import Initializer, get_initializer
from mnistlab.nn.parameters import Parameter
from mnistlab.nn.winograd import Winograd, applies

__all__ = ["Conv2D", "check_image_input", "offset_view", "pair"]

#: bytes of one kernel offset's input-gradient block per chunk of images (Conv2D._input_gradient)
COL2IM_CHUNK_BYTES = 1 << 20


def pair(layer: str, option: str, value) -> tuple[int, int]:
    """(height, width) from one positive integer or a pair of them; UsageError otherwise."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise UsageError(
            f"{layer} {option} must be a positive integer or a pair of them, got {option}={value!r}"
        )
    return int(values[0]), int(values[1])


def check_image_input(layer: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(height, width, channels) of a layer's input, or a UsageError naming the layer."""
    if len(input_shape) != 3:
        raise UsageError(
            f"{layer} needs images of shape (height, width, channels), got input_shape="
            f"{tuple(input_shape)}"
        )
    height, width, channels = input_shape
    return height, width, channels


def offset_view(
    x: np.ndarray, i: int, j: int, stride: tuple[int, int], out_size: tuple[int, int]
) -> np.ndarray:
    """x[:, i + r * stride_h, j + c * stride_w, :] for every output position (r, c): the inputs
    that kernel offset (i, j) meets, as a strided view (batch, out_h, out_w, channels)."""
    (stride_h, stride_w), (out_h, out_w) = stride, out_size
    rows = slice(i, i + stride_h * (out_h - 1) + 1, stride_h)
    columns = slice(j, j + stride_w * (out_w - 1) + 1, stride_w)
    return x[:, rows, columns]


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) so that the output has ceil(size / stride) positions; the odd one out
    goes after, as TensorFlow and PyTorch's padding="same" place it."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2D(Layer):
    """A 2-D convolution (cross-correlation, as the frameworks compute it) of NHWC images.

    ``y[n, r, c, f] = b[f] + sum(x_pad[n, r*sh + i, c*sw + j, ch] * W[i, j, ch, f])``

    summed over the kernel offsets (i, j) and the input channels ch, with x_pad the input with
    ``padding`` zeros around it and (sh, sw) the stride. As matrices (im2col): ``Y = cols @ W2``,
    where row (n, r, c) of ``cols`` holds the window under output (n, r, c), flattened as
    (i, j, ch), and ``W2`` is W as a (kh * kw * channels, filters) matrix. For ``G = dL/dY``,
    backward computes ``dL/dW2 = cols.T @ G``, ``dL/db`` = the sum of G's rows, and ``dL/dx``
    by adding each kernel offset's ``G @ W[i, j].T`` back onto the inputs that offset met
    (col2im; the first layer skips it).

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
        The window's height and width.
    stride : int or (int, int)
        Steps between windows, vertically and horizontally.
    padding : {"valid", "same"} or int or (int, int)
        "valid": no padding; "same": ceil(size / stride) outputs per axis (the odd zero row or
        column below and to the right); an integer p: p zeros on every side.
    init, bias_init : str, Initializer or dict
        The kernel's initializer (default glorot_uniform, over the fans kh * kw * channels and
        kh * kw * filters) and the bias's (zeros).
    use_bias : bool
        Whether the layer adds b.
    name : str or None
        Shown by Sequential.summary().

    Notes
    -----
    Shapes: x (batch, height, width, channels), W (kh, kw, channels, filters), b (filters,),
    y (batch, out_h, out_w, filters); float32 (float64 for gradient checks).

    Why NHWC (channels last): the GEMM's output, one row per (image, position) and one column
    per filter, is the NHWC output itself, for the whole batch in one product; in NCHW it would
    be one product per image or a transposition. The window copy into ``cols`` reads runs of
    kw * channels contiguous floats, and the col2im adds write runs of out_w * channels, where
    NCHW gives runs of out_w floats; and BatchNorm's per-channel statistics are the columns of
    a (positions, channels) view. benchmarks/conv_speed.py measures both layouts.

    For a single input channel at stride 1 the windows are copied into the transposed matrix
    (kh * kw, positions) instead, whose rows are shifted copies of whole image rows, not runs
    of kw floats; the GEMMs read either through BLAS's transpose flags.

    A 3x3 kernel at stride 1 over 4 or more input channels computes with Winograd's
    F(2x2, 3x3) instead (nn.winograd: 16 products per 2x2 tile of outputs where im2col takes
    36) wherever the products run on one BLAS thread (a minibatch half of the Trainer's, a
    one-core machine, a layer outside any setting); with several threads, and for every other
    shape, the im2col route below serves.

    The bias rides in the products: ``cols`` carries one more column of ones and the product
    takes ``[W2; b]``, so ``Y = [cols, 1] @ [W2; b]`` adds it, and ``[cols, 1].T @ G`` gives the
    kernel's gradient with the bias's (G's column sums) as its last row. Separate passes would
    read and write the whole output once more in forward and read G once more in backward.
    """

    kind = "Conv2D"

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = "valid",
        *,
        init: str | Initializer | dict | None = None,
        bias_init: str | Initializer | dict = "zeros",
        use_bias: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if not isinstance(filters, (int, np.integer)) or isinstance(filters, bool) or filters <= 0:
            raise UsageError(f"Conv2D filters must be a positive integer, got filters={filters!r}")
        self.filters = int(filters)
        self.kernel_size = pair("Conv2D", "kernel_size", kernel_size)
        self.stride = pair("Conv2D", "stride", stride)
        self.padding = _check_padding(padding)
        self.init = get_initializer(init) if init is not None else None
        self.bias_init = get_initializer(bias_init)
        self.use_bias = bool(use_bias)

    # ------------------------------------------------------------------ the math

    def forward(self, x, training=False):
        if x.shape[1:] != self.input_shape:
            raise UsageError(
                f"Conv2D was built for inputs {self.input_shape}, got x of shape {x.shape}"
            )
        y = self._buffer("out", (x.shape[0], *self.output_shape))
        # Winograd's transforms are NumPy passes on one core: where the products would run on
        # several BLAS threads, im2col's one large GEMM keeps every core busy instead
        self._by_winograd = self._winograd is not None and self.blas.threads == 1
        if self._by_winograd:
            bias = self.bias.data if self.bias is not None else None
            return self._winograd.forward(x, self.weight.data, bias, y, self.blas)
        cols = self._im2col(x)  # (positions, kh * kw * channels [+ 1])
        y_rows = y.reshape(cols.shape[0], self.filters)
        self.blas.gemm(cols, self._kernel_and_bias(), y_rows)  # Y = [cols, 1] @ [W2; b]
        self._cols = cols
        return y

    def backward(self, grad_out):
        if self._by_winograd:  # the route of the forward pass it follows
            grad_in = (
                self._buffer("grad_in", (grad_out.shape[0], *self.input_shape))
                if self.needs_input_grad
                else None
            )
            bias_grad = self.bias.grad if self.bias is not None else None
            self._winograd.backward(grad_out, self.weight.grad, bias_grad, grad_in, self.blas)
            return grad_in
        cols = self._cols
        grad_rows = grad_out.reshape(cols.shape[0], self.filters)  # G
        grad_in = self._input_gradient(grad_rows) if self.needs_input_grad else None
        if self.bias is None:
            self.blas.gemm(cols.T, grad_rows, self._kernel_matrix(self.weight.grad))  # cols.T @ G
            return grad_in
        # [cols, 1].T @ G: the kernel's gradient, and in its last row the bias's (G's column sums)
        both = self._buffer("kernel_and_bias_grad", (cols.shape[1], self.filters))
        self.blas.gemm(cols.T, grad_rows, both)
        np.copyto(self._kernel_matrix(self.weight.grad), both[:-1])
        np.copyto(self.bias.grad, both[-1])
        return grad_in

    def _kernel_and_bias(self) -> np.ndarray:
        """W2, or with a bias the ((kh * kw * channels) + 1, filters) matrix [W2; b] in a work
        buffer (a copy of a few thousand numbers per step)."""
        kernel = self._kernel_matrix(self.weight.data)
        if self.bias is None:
            return kernel
        both = self._buffer("kernel_and_bias", (kernel.shape[0] + 1, self.filters))
        np.copyto(both[:-1], kernel)
        np.copyto(both[-1], self.bias.data)
        return both

    def _input_gradient(self, grad_rows: np.ndarray) -> np.ndarray:
        """dL/dx: each kernel offset's G @ W[i, j].T, added onto the inputs it met (col2im).

        One product per offset, into a (positions, channels) block, rather than one G @ W2.T
        whose rows interleave the offsets: each add then reads and writes runs of
        out_w * channels contiguous floats instead of runs of `channels`. Padding receives no
        gradient: each offset adds only the outputs whose inputs lie inside the image.

        The batch goes through in chunks of images whose block is about COL2IM_CHUNK_BYTES, so
        that the block and the chunk's input gradient stay in the core's cache between the
        product and the add: written whole, the block and the gradient went out to memory and
        back once per offset. The adds keep their order; a BLAS may round a product's rows
        differently for another number of rows, so the chunk size can move the last bits."""
        per_image = self._out_h * self._out_w
        batch = grad_rows.shape[0] // per_image
        channels = self.input_shape[2]
        grad_in = self._buffer("grad_in", (batch, *self.input_shape))
        chunks = image_chunks(batch, per_image * channels * grad_in.itemsize, COL2IM_CHUNK_BYTES)
        largest = max((images.stop - images.start for images in chunks), default=0)
        block = self._buffer("col_block", (largest * per_image, channels))
        kernel = self.weight.data
        for images in chunks:
            start, stop = images.start, images.stop
            rows = grad_rows[start * per_image : stop * per_image]
            part = block[: rows.shape[0]]
            part_images = part.reshape(stop - start, self._out_h, self._out_w, channels)
            target = grad_in[start:stop]
            target.fill(0)
            for i, j in np.ndindex(*self.kernel_size):
                self.blas.gemm(rows, kernel[i, j].T, part)
                out_rows, in_rows = self._overlaps[0][i]
                out_columns, in_columns = self._overlaps[1][j]
                target[:, in_rows, in_columns] += part_images[:, out_rows, out_columns]
        return grad_in

    # ------------------------------------------------------------------ im2col

    def _im2col(self, x: np.ndarray) -> np.ndarray:
        """The windows of x as a (positions, kh * kw * channels) matrix, copied into a work
        buffer once (or the transpose of a (kh * kw, positions) buffer, see the class's Notes).
        With a bias, the matrix has one more column of ones (written when the buffer is made;
        the copies leave it alone), so that the bias rides in the product (see the Notes)."""
        kernel_h, kernel_w = self.kernel_size
        stride_h, stride_w = self.stride
        channels = self.input_shape[2]
        batch = x.shape[0]
        source = self._pad(x)
        # (batch, out_h, out_w, channels, kh, kw): every window, no copy yet
        windows = sliding_window_view(source, (kernel_h, kernel_w), axis=(1, 2))
        windows = windows[:, ::stride_h, ::stride_w]
        positions = batch * self._out_h * self._out_w
        size = kernel_h * kernel_w * channels
        width = size + (self.bias is not None)
        ones = 1 if self.bias is not None else None  # the bias's column, written once
        if self._offsets_first:
            cols_t = self._buffer("cols_t", (width, positions), fill=ones)
            target = cols_t[:size].reshape(
                kernel_h, kernel_w, channels, batch, self._out_h, self._out_w
            )
            np.copyto(target, windows.transpose(4, 5, 3, 0, 1, 2))
            return cols_t.T
        cols = self._buffer("cols", (positions, width), fill=ones)
        # the window columns of each row, split into (kh, kw, channels): a view (only the
        # contiguous last axis is split)
        target = cols.reshape(batch, self._out_h, self._out_w, width)[..., :size].reshape(
            batch, self._out_h, self._out_w, kernel_h, kernel_w, channels
        )
        np.copyto(target, windows.transpose(0, 1, 2, 4, 5, 3))
        return cols

    def _pad(self, x: np.ndarray) -> np.ndarray:
        """x inside a work buffer whose border of zeros is the padding (x itself without)."""
        if self._padded_shape == self.input_shape:
            return x
        # zero when first made; only the inside is written after that
        padded = self._buffer("padded", (x.shape[0], *self._padded_shape), fill=0)
        height, width, _ = self.input_shape
        top, left = self._pad_before
        padded[:, top : top + height, left : left + width] = x
        return padded

    def _kernel_matrix(self, kernel: np.ndarray) -> np.ndarray:
        """W (kh, kw, channels, filters) seen as the (kh * kw * channels, filters) matrix W2."""
        return kernel.reshape(-1, self.filters)

    # ------------------------------------------------------------------ build, config

    def build(self, input_shape, rng, dtype, blas=None):
        super().build(input_shape, rng, dtype, blas)
        height, width, channels = check_image_input("Conv2D", self.input_shape)
        kernel_h, kernel_w = self.kernel_size
        (top, bottom), (left, right) = self._paddings(height, width)
        padded_h, padded_w = height + top + bottom, width + left + right
        if kernel_h > padded_h or kernel_w > padded_w:
            raise UsageError(
                f"Conv2D kernel_size={self.kernel_size} does not fit its input of "
                f"{(height, width)} with padding={self.padding!r}: no output position is left"
            )
        self._pad_before = (top, left)
        self._padded_shape = (padded_h, padded_w, channels)
        self._out_h = (padded_h - kernel_h) // self.stride[0] + 1
        self._out_w = (padded_w - kernel_w) // self.stride[1] + 1
        self._offsets_first = channels == 1 and self.stride == (1, 1)
        #: per axis and kernel offset: (output positions, the input positions they meet)
        self._overlaps = [
            [_overlap(offset, before, stride, out_size, size) for offset in range(kernel)]
            for kernel, before, stride, out_size, size in zip(
                self.kernel_size,
                (top, left),
                self.stride,
                (self._out_h, self._out_w),
                (height, width),
                strict=True,
            )
        ]
        #: F(2x2, 3x3) for a 3x3 kernel at stride 1 over several channels (nn.winograd), used
        #: where the products run on one BLAS thread (forward); _by_winograd: the last
        #: forward's route, which backward follows
        self._by_winograd = False
        self._winograd = (
            Winograd(
                self.input_shape,
                self._pad_before,
                (self._out_h, self._out_w),
                self.filters,
                self._buffer,
            )
            if applies(self.kernel_size, self.stride, channels)
            else None
        )
        init = self.init or get_initializer("glorot_uniform")
        self.weight = Parameter(
            init((kernel_h, kernel_w, channels, self.filters), rng, dtype), "W", decay=True
        )
        self.bias = (
            Parameter(self.bias_init((self.filters,), rng, dtype), "b", decay=False)
            if self.use_bias
            else None
        )
        self.output_shape = (self._out_h, self._out_w, self.filters)
        return self.output_shape

    def _paddings(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)) zeros for an input of height x width."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding == "same":
            return (
                _same_padding(height, self.kernel_size[0], self.stride[0]),
                _same_padding(width, self.kernel_size[1], self.stride[1]),
            )
        rows, columns = self.padding
        return (rows, rows), (columns, columns)

    def parameters(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def multiply_adds(self):
        return self._out_h * self._out_w * self.weight.size

    def config(self):
        return {
            "type": self.kind,
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "init": self.init.config() if self.init else None,
            "bias_init": self.bias_init.config(),
            "use_bias": self.use_bias,
        }


def _overlap(
    offset: int, before: int, stride: int, out_size: int, size: int
) -> tuple[slice, slice]:
    """Along one axis: the output positions r whose input r * stride + offset - before lies
    inside the image (not in the padding), and those inputs, as two slices of equal length."""
    first = max(0, -(-(before - offset) // stride))  # ceil((before - offset) / stride)
    last = min(out_size - 1, (size - 1 + before - offset) // stride)
    if last < first:
        return slice(0, 0), slice(0, 0)
    start = first * stride + offset - before
    return slice(first, last + 1), slice(start, start + (last - first) * stride + 1, stride)


def _check_padding(padding) -> str | tuple[int, int]:
    """The padding option checked: "valid", "same", or (rows, columns) of zeros per side."""
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise UsageError(
                f"Conv2D padding must be 'valid', 'same' or a number of zeros, got "
                f"padding={padding!r}"
            )
        return padding
    values = tuple(padding) if isinstance(padding, (tuple, list)) else (padding, padding)
    if len(values) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in values
    ):
        raise UsageError(
            f"Conv2D padding must be 'valid', 'same' or a number of zeros (>= 0) per side, got "
            f"padding={padding!r}"
        )
    return int(values[0]), int(values[1])
