"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 stride-1 convolution in 2.25x fewer products.

A Conv2D with a 3x3 kernel at stride 1 over several input channels computes its outputs in
tiles of 2x2 (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015). Each
tile's 4x4 patch of input d, its transform ``V = B^T d B``, the kernel's transform
``U = G g G^T`` and the outputs ``Y = A^T (U * V) A``, where * is an elementwise product over the
16 positions (xi, nu) of the 4x4 tiles that is a sum over the input channels: one GEMM per
position, (tiles, channels) @ (channels, filters). Sixteen GEMMs of 4 x 4 = 16 products per
tile replace the im2col GEMM's 9 per output, 36 per tile: the products the step spends most of
its time in are 2.25x fewer. The transforms' matrices hold 0, 1, -1 (and 1/2 in G, applied to
the kernel only), so the transforms are additions over strided views of a chunk of images.

Backward is the same algebra transposed. For G' = A g A^T, the output gradient transformed
tile by tile: the kernel's transformed gradient is ``dU = V^T @ G'`` per position (then
``dW = G^T dU G``), the transformed input gradient ``dV = G' @ U^T`` per position, and
``dx = B dV B^T`` added back onto the overlapping 4x4 patches (neighbouring tiles share two
rows or columns).

Layout. The batch is NHWC. Transforms run over a chunk of images at a time (CHUNK_BYTES of
transformed tiles, which stay in the core's cache from one pass to the next), as NumPy passes
whose operands are views of whole image rows wherever the algebra allows: along the height a tile's
rows are whole image rows (runs of width * channels floats). Along the width, positions nu = 0
and 3 of every tile come from one subtraction of two runs of a row (columns 2u, 2u+1 minus
columns 2u+2, 2u+3), which leaves them interleaved per tile; the GEMMs read such a position's
(tiles, channels) matrix with a row stride of two rows (BLAS's leading dimension), so the
interleaving costs nothing. Positions 1 and 2 (and the gradient's) are sums of a tile's two
middle columns, runs of `channels`. Work arrays are the layer's (`buffer`), made for the
largest chunk and reused, a smaller last chunk taking the front of each.

Signs. The output gradient's transform at nu = 3 is the negation of a view that already exists
(its tiles' second columns); rather than a pass to negate it, the GEMMs that read it use the
negated kernel transform (dV) or negate their small output (dU).

Numbers: the transforms add and subtract terms before the products, so float32 results differ
from im2col's by about 1e-6 of the largest magnitude in an array (not of each element);
tests/nn/test_winograd.py compares with PyTorch's conv2d to 1e-5 of it, and with the im2col route
in float64 to 1e-12.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mnistlab.nn.functional import image_chunks

__all__ = ["Winograd", "applies"]

#: G of F(2x2, 3x3): the kernel's transform U = G g G^T
KERNEL_TRANSFORM = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
#: the fewest input channels for which the transforms' passes cost less than the products they
#: save: with one channel (a first layer), the GEMMs are outer products and im2col is faster
MIN_CHANNELS = 4
#: bytes of transformed tiles per chunk of images (Winograd.forward)
CHUNK_BYTES = 3 << 19


def applies(kernel_size: tuple[int, int], stride: tuple[int, int], channels: int) -> bool:
    """Whether Conv2D computes with Winograd: a 3x3 kernel at stride 1 over MIN_CHANNELS or
    more input channels."""
    return kernel_size == (3, 3) and stride == (1, 1) and channels >= MIN_CHANNELS


class Winograd:
    """F(2x2, 3x3) for one Conv2D: its geometry, work arrays and the last forward's transformed
    input (read by backward).

    input_shape: (height, width, channels); pad_before: (top, left) zeros; out_size: (out_h,
    out_w); filters; buffer(name, shape, fill=None): the layer's work arrays. forward and
    backward take the layer's Blas, whose setting the GEMMs follow.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        pad_before: tuple[int, int],
        out_size: tuple[int, int],
        filters: int,
        buffer: Callable,
    ) -> None:
        self.height, self.width, self.channels = input_shape
        self.top, self.left = pad_before
        self.out_h, self.out_w = out_size
        self.filters = filters
        self.buffer = buffer
        self.blas = None  # the layer's Blas, handed to each forward and backward
        #: tiles per image along each axis; the padded input holds 2 * tiles + 2 rows and columns
        self.tiles_h, self.tiles_w = -(-self.out_h // 2), -(-self.out_w // 2)
        self.padded = (2 * self.tiles_h + 2, 2 * self.tiles_w + 2)
        #: the input needs no copy: no zeros around it and a whole number of tiles
        self._bare = pad_before == (0, 0) and self.padded == (self.height, self.width)
        #: the output is the tiles' output as it is (no odd row or column to drop)
        self._even = (2 * self.tiles_h, 2 * self.tiles_w) == out_size

    # ------------------------------------------------------------------ forward

    def forward(self, x, kernel, bias, out, blas):
        """out (batch, out_h, out_w, filters) <- the convolution of x (batch, height, width,
        channels) with kernel (3, 3, channels, filters), plus bias (None: none), its products
        through `blas`; keeps the batch's V for backward (as im2col keeps its windows, whether
        or not a backward pass follows).

        The batch goes through in chunks of images (CHUNK_BYTES), each from its input to its
        output before the next, so that a chunk's transformed tiles are still in the core's
        cache when the GEMMs and the output's transform read them."""
        self.blas = blas
        batch = x.shape[0]
        th, tw, c, f = self.tiles_h, self.tiles_w, self.channels, self.filters
        self._kernel_t = self._transform_kernel(kernel)
        chunks = self._chunks(batch, x.dtype.itemsize)
        self._outer = self.buffer("winograd_v_outer", (4, batch, th, tw, 2, c))
        self._inner = self.buffer("winograd_v_inner", (4, batch, th, tw, 2, c))
        for images in chunks:
            n = images.stop - images.start
            tiles = n * th * tw
            outer, inner = self._outer[:, images], self._inner[:, images]
            self._transform_input(self._pad(x[images]), outer, inner)
            outer, inner = _stack(outer, tiles), _stack(inner, tiles)
            m = self._part("winograd_m", lambda k: (4, 4, k * th * tw, f), n)  # in ORDER
            self.blas.gemm_stack(outer, self._kernel_t[:, :2], m[:, :2])
            self.blas.gemm_stack(inner, self._kernel_t[:, 2:], m[:, 2:])
            if bias is not None:
                # y = A^T M A puts A^T[a, 1] * A^T[b, 1] = 1 times M[1, 1] in every output
                self.blas.add_rows(m[1, AT[1]], bias, self._ones(n))
            target = (
                out[images]
                if self._even
                else self._part("winograd_out", lambda k: (k, 2 * th, 2 * tw, f), n)
            )
            self._transform_output(m, target)
            if not self._even:
                np.copyto(out[images], target[:, : self.out_h, : self.out_w])
        return out

    def _chunks(self, batch: int, itemsize: int) -> list[slice]:
        """Slices of the batch's images, each about CHUNK_BYTES of transformed tiles; sets
        the largest chunk's size, for which the work arrays are made (`_part`)."""
        per_image = 16 * self.tiles_h * self.tiles_w * max(self.channels, self.filters)
        chunks = image_chunks(batch, per_image * itemsize, CHUNK_BYTES)
        self._largest = max((part.stop - part.start for part in chunks), default=0)
        return chunks

    def _part(self, name: str, shape, images: int, fill=None) -> np.ndarray:
        """The work array `name` for a chunk of `images` images: the front of one made for the
        largest chunk, so that a smaller last chunk reuses it. shape(k): its shape for k
        images."""
        whole = self.buffer(name, shape(self._largest), fill=fill)
        return whole[tuple(slice(0, size) for size in shape(images))]

    def _transform_kernel(self, kernel: np.ndarray) -> np.ndarray:
        """U = G g G^T for every (channel, filter): (4, 4, channels, filters)."""
        g = KERNEL_TRANSFORM.astype(kernel.dtype)
        rows = np.tensordot(g, kernel, axes=(1, 0))  # (4, 3, channels, filters)
        both = np.tensordot(g, rows, axes=(1, 1)).transpose(1, 0, 2, 3)  # (xi, nu, ...)
        return np.ascontiguousarray(both[:, ORDER])

    def _stacks(self, images: slice, tiles: int) -> tuple[np.ndarray, np.ndarray]:
        """V of a chunk's images, kept by forward, as two (4, 2, tiles, channels) stacks:
        positions 0, 3 and 1, 2 (ORDER)."""
        return _stack(self._outer[:, images], tiles), _stack(self._inner[:, images], tiles)

    def _pad(self, x: np.ndarray) -> np.ndarray:
        """x inside zeros: the padding, and a last row and column where the output's size is
        odd (zero when first made; only the inside is written after that)."""
        if self._bare:
            return x
        padded = self._part(
            "winograd_padded", lambda k: (k, *self.padded, self.channels), x.shape[0], fill=0
        )
        padded[:, self.top : self.top + self.height, self.left : self.left + self.width] = x
        return padded

    def _transform_input(self, d: np.ndarray, outer: np.ndarray, inner: np.ndarray) -> None:
        """V = B^T d B of every tile, into outer (positions 0, 3) and inner (1, 2), each
        (4, batch, th, tw, 2, channels).

        B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], applied to a tile's
        rows (2t + k, k = 0..3), then to its columns."""
        batch, th, tw, c = d.shape[0], self.tiles_h, self.tiles_w, self.channels
        rows = [d[:, k : k + 2 * th - 1 : 2] for k in range(4)]  # (batch, th, padded_w, c)
        by_rows = self._part("winograd_rows", lambda k: (4, k, th, 2 * tw + 2, c), batch)
        np.subtract(rows[0], rows[2], out=by_rows[0])
        np.add(rows[1], rows[2], out=by_rows[1])
        np.subtract(rows[2], rows[1], out=by_rows[2])
        np.subtract(rows[1], rows[3], out=by_rows[3])
        pairs = by_rows.reshape(4, batch, th, tw + 1, 2, c)  # columns (2u, 2u + 1) per u
        # nu = 0 and 3: columns (2u, 2u + 1) - (2u + 2, 2u + 3), interleaved per tile
        np.subtract(pairs[:, :, :, :tw], pairs[:, :, :, 1:], out=outer)
        # nu = 1 and 2: column 2u + 1 plus and minus column 2u + 2
        np.add(pairs[:, :, :, :tw, 1], pairs[:, :, :, 1:, 0], out=inner[..., 0, :])
        np.subtract(pairs[:, :, :, 1:, 0], pairs[:, :, :, :tw, 1], out=inner[..., 1, :])

    def _transform_output(self, m: np.ndarray, out: np.ndarray) -> None:
        """out (batch, 2 * th, 2 * tw, filters) <- A^T M A of every tile, A^T = [[1, 1, 1, 0],
        [0, 1, -1, -1]]: over xi (whole (4, tiles, filters) blocks), then over nu."""
        batch, th, tw, f = out.shape[0], self.tiles_h, self.tiles_w, self.filters
        by_rows = self._part("winograd_out_rows", lambda k: (2, 4, k * th * tw, f), batch)
        np.add(m[0], m[1], out=by_rows[0])
        by_rows[0] += m[2]
        np.subtract(m[1], m[2], out=by_rows[1])
        by_rows[1] -= m[3]
        rows = by_rows.reshape(2, 4, batch, th, tw, f)
        tiles = out.reshape(batch, th, 2, tw, 2, f)
        for a in range(2):
            left, right = tiles[:, :, a, :, 0], tiles[:, :, a, :, 1]
            r0, r1, r2, r3 = (rows[a, AT[nu]] for nu in range(4))
            np.add(r0, r1, out=left)
            left += r2
            np.subtract(r1, r2, out=right)
            right -= r3

    # ------------------------------------------------------------------ backward

    def backward(self, grad_out, kernel_grad, bias_grad, input_grad, blas) -> None:
        """From grad_out (batch, out_h, out_w, filters): kernel_grad (3, 3, channels, filters)
        and bias_grad (filters,) written; input_grad (batch, height, width, channels) written
        unless None (a first layer); the products through `blas`."""
        self.blas = blas
        batch = grad_out.shape[0]
        th, tw, f, c = self.tiles_h, self.tiles_w, self.filters, self.channels
        du = self.buffer("winograd_du", (4, 4, c, f))
        du_part = self.buffer("winograd_du_part", (4, 4, c, f))
        if bias_grad is not None:
            bias_grad.fill(0)
            bias_part = self.buffer("winograd_bias_part", (1, f))
        if input_grad is not None:
            kernel_t = self.buffer("winograd_kernel_signed", (4, 4, f, c))
            np.copyto(kernel_t, self._kernel_t.transpose(0, 1, 3, 2))
            kernel_t[:, AT[3]] *= -1
        chunks = self._chunks(batch, grad_out.dtype.itemsize)
        if not chunks:  # an empty batch: no terms, a zero gradient
            du.fill(0)
        for number, images in enumerate(chunks):
            n = images.stop - images.start
            tiles = n * th * tw
            g_outer, g_inner = self._transform_gradient(self._grad_tiles(grad_out[images]))
            outer, inner = self._stacks(images, tiles)
            # dU = V^T G' per position (nu = 3's G' is negated: see the module's docstring)
            part = du if number == 0 else du_part
            self.blas.gemm_stack(outer.transpose(0, 1, 3, 2), g_outer, part[:, :2])
            self.blas.gemm_stack(inner.transpose(0, 1, 3, 2), g_inner, part[:, 2:])
            if number:
                du += du_part
            if bias_grad is not None:
                # G'[1, 1] = g00 + g01 + g10 + g11 per tile: the bias's gradient, summed
                ones = self._ones(n).reshape(1, tiles)
                self.blas.gemm(ones, g_inner[1, 0], bias_part)
                bias_grad += bias_part[0]
            if input_grad is None:
                continue
            dv = self._part("winograd_dv", lambda k: (4, 4, k * th * tw, c), n)
            self.blas.gemm_stack(g_outer, kernel_t[:, :2], dv[:, :2])
            self.blas.gemm_stack(g_inner, kernel_t[:, 2:], dv[:, 2:])
            self._transform_input_grad(dv.reshape(4, 4, n, th, tw, c), input_grad[images])
        du[:, AT[3]] *= -1
        gt = KERNEL_TRANSFORM.astype(du.dtype)
        # dW = G^T dU G
        natural = du[:, [AT[nu] for nu in range(4)]]
        rows = np.tensordot(gt, natural, axes=(0, 0))  # (3, 4, channels, filters)
        np.copyto(kernel_grad, np.tensordot(gt, rows, axes=(0, 1)).transpose(1, 0, 2, 3))

    def _ones(self, images: int) -> np.ndarray:
        """A vector of ones, one per tile of `images` images (written when first made)."""
        per_image = self.tiles_h * self.tiles_w
        return self._part("winograd_ones", lambda k: (k * per_image,), images, fill=1)

    def _grad_tiles(self, grad_out: np.ndarray) -> np.ndarray:
        """grad_out as whole tiles (batch, 2 * th, 2 * tw, filters): itself, or inside zeros
        where the output's size is odd."""
        if self._even:
            return grad_out
        th, tw, f = self.tiles_h, self.tiles_w, self.filters
        g = self._part(
            "winograd_grad_tiles", lambda k: (k, 2 * th, 2 * tw, f), grad_out.shape[0], fill=0
        )
        g[:, : self.out_h, : self.out_w] = grad_out
        return g

    def _transform_gradient(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """G' = A g A^T of every tile (A = [[1, 0], [1, 1], [1, -1], [0, -1]]), except that
        position nu = 3 holds -G'; returns the (4, 2, tiles, filters) stacks of positions 0, 3
        and 1, 2 (ORDER)."""
        batch, th, tw, f = g.shape[0], self.tiles_h, self.tiles_w, self.filters
        halves = g.reshape(batch, th, 2, 2 * tw, f)
        by_rows = self._part("winograd_grad_rows", lambda k: (4, k, th, 2 * tw, f), batch)
        np.copyto(by_rows[0], halves[:, :, 0])
        np.add(halves[:, :, 0], halves[:, :, 1], out=by_rows[1])
        np.subtract(halves[:, :, 0], halves[:, :, 1], out=by_rows[2])
        np.negative(halves[:, :, 1], out=by_rows[3])
        pairs = by_rows.reshape(4, batch, th, tw, 2, f)  # a tile's two columns
        inner = self._part("winograd_grad_inner", lambda k: (4, k, th, tw, 2, f), batch)
        np.add(pairs[..., 0, :], pairs[..., 1, :], out=inner[..., 0, :])
        np.subtract(pairs[..., 0, :], pairs[..., 1, :], out=inner[..., 1, :])
        tiles = batch * th * tw
        return _stack(pairs, tiles), _stack(inner, tiles)

    def _transform_input_grad(self, dv: np.ndarray, input_grad: np.ndarray) -> None:
        """input_grad <- B dV B^T of every tile, added onto the overlapping 4x4 patches, the
        padding left out. dv: (4, 4, batch, th, tw, channels).

        A tile's patch rows 2t + k receive (k = 0..3) dV0, dV1 - dV2 + dV3, dV1 + dV2 - dV0 and
        -dV3 (over xi); so padded row 2s gets tile s's k = 0 and tile s - 1's k = 2, row 2s + 1
        tile s's k = 1 and tile s - 1's k = 3. The same again over the columns (nu)."""
        batch, th, tw, c = dv.shape[2], self.tiles_h, self.tiles_w, self.channels
        # over xi: padded rows 2s (parity 0) and 2s + 1 (parity 1), per nu
        rows = self._part("winograd_grad_by_parity", lambda k: (4, 2, k, th + 1, tw, c), batch)
        self._overlap_add(list(dv), rows[:, 0], rows[:, 1], axis=2, name="rows")
        padded = (
            input_grad
            if self._bare
            else self._part("winograd_grad_padded", lambda k: (k, *self.padded, c), batch)
        )
        # (parity of the row, batch, th + 1, tw + 1, parity of the column, c)
        target = padded.reshape(batch, th + 1, 2, tw + 1, 2, c).transpose(2, 0, 1, 3, 4, 5)
        # over nu, rows of both parities at once, straight into padded columns 2s and 2s + 1
        natural = [rows[AT[nu]] for nu in range(4)]
        self._overlap_add(natural, target[..., 0, :], target[..., 1, :], axis=3, name="columns")
        if not self._bare:
            np.copyto(
                input_grad,
                padded[:, self.top : self.top + self.height, self.left : self.left + self.width],
            )

    def _overlap_add(self, parts, even: np.ndarray, odd: np.ndarray, axis: int, name: str):
        """B's overlap-add along one tile axis. parts: (4, *rest), over xi or nu first; `axis`:
        the tile axis (t or u, n tiles) of parts[0]; even, odd: rest with n + 1 along `axis`,
        written: even[s] = p0[s] + (p1 + p2 - p0)[s - 1], odd[s] = (p1 - p2 + p3)[s] -
        p3[s - 1], where p[-1] = p[n] = 0. name: its scratch array's."""
        p0, p1, p2, p3 = parts
        n = p0.shape[axis]
        head = (slice(None),) * axis
        first, last = head + (slice(0, n),), head + (slice(n, n + 1),)
        shifted = head + (slice(1, n + 1),)
        scratch = self._part(
            f"winograd_overlap_{name}", lambda k: (p0.shape[0], k, *p0.shape[2:]), p0.shape[1]
        )
        np.copyto(even[first], p0)
        even[last] = 0
        np.add(p1, p2, out=scratch)
        scratch -= p0
        even[shifted] += scratch
        np.subtract(p1, p2, out=odd[first])
        odd[first] += p3
        odd[last] = 0
        odd[shifted] -= p3


#: the order in which M, dU, dV and the kernel's transform hold the positions nu of a tile:
#: first those of the outer columns' difference (0, 3), then of the middle columns' (1, 2),
#: as the transforms leave them interleaved; AT[nu] is where position nu lies
ORDER = (0, 3, 1, 2)
AT = {nu: ORDER.index(nu) for nu in range(4)}


def _stack(pairs: np.ndarray, tiles: int) -> np.ndarray:
    """(4, batch, th, tw, 2, columns) -> the (4, 2, tiles, columns) view of its (tiles,
    columns) matrices, one per xi and slot (their rows two apart: BLAS's leading dimension)."""
    view = pairs.transpose(0, 4, 1, 2, 3, 5)
    return view.reshape(4, 2, tiles, pairs.shape[-1])
