"""Conv2D's forward and backward next to PyTorch's conv2d, on the convolutions of the cnn preset.

The layers are the `cnn` preset's, read from it (as `mnistlab bench` builds them, on 28x28
images, at the preset's batch size): today, at batch 128 in float32 with 3x3 kernels and
padding "same" (--padding valid: 28 -> 26 and 13 -> 11), conv1, 1 -> 32 channels on 28x28
images, a first layer (no input gradient); conv2, 32 -> 64 channels on 14x14 (after a 2x2
pool), with its input gradient. For
each layer, in a new random order each round and after a rest (medians of --repeats):

- mnistlab: Conv2D forward (training), and forward + backward, NHWC, under the BLAS setting the
  Trainer uses (NumPy's BLAS at --threads threads);
- the floor: the same GEMMs alone on preallocated arrays (Y = cols @ W2; then dW2 = cols.T @ G
  and the per-offset G @ W[i, j].T of the input gradient);
- one-GEMM col2im (conv2 only): Conv2D's backward with its input gradient computed as one
  ``G @ W2.T`` whose rows hold the offsets side by side, added back offset by offset (runs of
  `channels` floats), instead of one product per offset into a block of its own;
- NCHW, the layout not chosen: the same im2col steps written for channels first (one GEMM per
  image, W2 @ cols_n; col2im adds along image rows);
- shifted GEMMs, the route that copies no windows (conv2 only): on the padded images seen as a
  (batch * padded_h * padded_w, channels) matrix, kernel offset (i, j) is a shift of the rows by
  i * padded_w + j, so Y on the padded grid is the sum over the offsets of
  ``X[shift:shift + n] @ W[i, j]``: 9 GEMMs accumulating with beta = 1 (SciPy's BLAS, entered
  at --threads threads for the case), the border rows computed and dropped; the kernel's
  gradient is 9 GEMMs ``X[shift:shift + n].T @ G``, the input's 9 more with beta = 1;
- PyTorch: F.conv2d forward under no_grad, and forward + backward, NCHW (its default), at
  torch.set_num_threads(--threads); and the floor's GEMMs with torch.mm (MKL's BLAS).

    .venv/bin/python benchmarks/conv_speed.py [--repeats 15] [--threads 2] [--padding same]

Measured on the 2-core machine (AMD EPYC, AVX-512; NumPy's OpenBLAS 0.3.30, PyTorch 2.13 with
oneDNN and MKL), medians (min) in ms of 21 rounds, while other jobs shared the machine now and
then (a median far above its minimum shows a disturbed case; rerun at a quiet moment):

    --threads 2, padding "same"         forward       fwd + bwd
    conv1 1->32 on 28x28
      mnistlab NHWC                  2.08 (1.54)     4.78 (3.76)
      floor: GEMMs alone             0.77 (0.55)     3.26 (2.72)
      NCHW im2col                    2.87 (1.93)     3.77 (3.47)
      torch conv2d                   1.56 (1.16)    16.65 (12.12)
      floor: torch.mm (MKL)          1.28 (0.55)     3.18 (2.05)
    conv2 32->64 on 14x14
      mnistlab NHWC                 10.35 (9.11)    29.40 (25.27)
      floor: GEMMs alone             6.98 (6.52)    21.17 (19.97)
      one-GEMM col2im                        -      33.47 (32.39)
      NCHW im2col                   13.80 (11.13)   50.97 (39.23)
      shifted GEMMs                  9.28 (8.00)    32.76 (29.42)
      torch conv2d                   5.11 (4.64)    17.53 (14.74)
      floor: torch.mm (MKL)          7.33 (6.94)    21.70 (20.66)
    both layers, fwd + bwd: mnistlab 34.18 ms, PyTorch 34.18 ms (1.00x)

The quietest run (without the torch.mm rows) gave conv2 25.49 (24.63) for mnistlab against
15.36 (14.03) for PyTorch, and PyTorch's conv1 4.45 (3.91): PyTorch's conv1 forward + backward
varies between about 4 and 17 ms from run to run, and the two-layer ratio with it (1.00x here,
1.46x there); conv2's ratio holds at 1.7x.

--threads 1 (--repeats 9), fwd / fwd + bwd: conv2 mnistlab 15.35 / 42.41, floor 12.82 / 37.44,
shifted GEMMs 14.75 / 54.42, one-GEMM col2im - / 51.85, NCHW 15.52 / 57.32, torch 8.92 / 29.85;
conv1 mnistlab 2.01 / 5.83, torch 1.59 / 20.37.

What it says: the GEMMs of the im2col formulation alone take 1.2-1.4x PyTorch's whole conv2,
and MKL's GEMM (torch.mm) takes as long as OpenBLAS's on the same shapes: oneDNN's direct
convolution, not the BLAS, makes PyTorch's lead. Conv2D adds about 5 ms to its GEMMs on conv2
(the window copy and the col2im adds, on one core). NCHW takes 1.6x NHWC's time on conv2;
one G @ W2.T whose col2im adds runs of `channels` floats takes 1.3x the per-offset products;
shifted GEMMs save the window copy in the forward pass but lose more in the kernel's gradient
(9 GEMMs with a 32 x 64 output each) and the beta = 1 accumulations.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mnistlab.backend.blas import Blas
from mnistlab.bench.cnn import build_network, cnn_network
from mnistlab.nn import Conv2D

REST = 0.2  # seconds between cases: idle BLAS and OpenMP workers stop spinning
BATCH = cnn_network()["batch_size"]


def preset_convolutions(padding: str | None) -> list[tuple]:
    """(name, input shape (height, width, channels), filters, kernel, first layer?) of each
    Conv2D of the cnn preset's network on 28x28 images (with `padding` instead of the
    preset's, if given)."""
    network = cnn_network()
    network["padding"] = padding or network["padding"]
    model = build_network({"cnn": network, "image_shape": [28, 28]})
    convolutions = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    return [
        (f"conv{k + 1}", layer.input_shape, layer.filters, layer.kernel_size, k == 0)
        for k, layer in enumerate(convolutions)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--padding", choices=("same", "valid"), default=None, help="default: the preset's"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    blas = Blas()
    totals = {"mnistlab NHWC": 0.0, "torch conv2d": 0.0}  # both layers, fwd + bwd medians
    padding = args.padding or cnn_network()["padding"]
    print(f"batch {BATCH}, padding {padding!r}, {args.threads} threads: median (min) ms")
    for name, (height, width, channels), filters, kernel, first in preset_convolutions(padding):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((BATCH, height, width, channels), dtype=np.float32)
        layer = Conv2D(filters, kernel, padding=padding)
        layer.build(x.shape[1:], rng, np.float32, blas)
        layer.needs_input_grad = not first
        cases = {
            **mnistlab_cases(layer, x),
            **floor_cases(layer, x, "floor: GEMMs alone"),
            **nchw_cases(layer, x),
            **({} if first else one_gemm_col2im_cases(layer, x)),
            **({} if first else shifted_gemm_cases(layer, x, args.threads)),
            **torch_cases(torch, layer, x, first),
        }
        with blas.training(args.threads):
            times = time_cases(cases, args.repeats)
        title = f"{name} {channels}->{filters} on {height}x{width}"
        print(f"\n{title:<38} {'forward':>15} {'fwd + bwd':>15}")
        for label in LABELS:
            cells = [_cell(times.get(f"{label} {part}")) for part in ("forward", "fwd+bwd")]
            print(f"{label:<38} {cells[0]:>15} {cells[1]:>15}")
        for label in totals:
            totals[label] += statistics.median(times[f"{label} fwd+bwd"]) * 1e3
    ours, theirs = totals.values()
    print(f"\nboth layers, fwd + bwd: mnistlab {ours:.2f} ms, PyTorch {theirs:.2f} ms", end="")
    print(f" ({ours / theirs:.2f}x)")


LABELS = (
    "mnistlab NHWC",
    "floor: GEMMs alone",
    "one-GEMM col2im",
    "NCHW im2col",
    "shifted GEMMs",
    "torch conv2d",
    "floor: torch.mm (MKL)",
)


def _cell(values) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * 1e3:.2f} ({min(values) * 1e3:.2f})"


def mnistlab_cases(layer: Conv2D, x: np.ndarray) -> dict:
    grad = np.random.default_rng(1).standard_normal((len(x), *layer.output_shape), dtype=np.float32)

    def forward():
        layer.forward(x, training=True)

    def forward_backward():
        layer.forward(x, training=True)
        layer.backward(grad)

    return {"mnistlab NHWC forward": forward, "mnistlab NHWC fwd+bwd": forward_backward}


def floor_cases(layer: Conv2D, x: np.ndarray, label: str, product=None, wrap=None) -> dict:
    """The layer's GEMMs alone, on arrays of their shapes (what no im2col scheme can avoid):
    product(a, b, out) computes out = a @ b (by default the layer's Blas.gemm) on the arrays
    as wrap() presents them (by default as they are)."""
    product = product or layer.blas.gemm
    wrap = wrap or (lambda array: array)
    rng = np.random.default_rng(2)
    kernel_h, kernel_w = layer.kernel_size
    positions = len(x) * layer.output_shape[0] * layer.output_shape[1]
    channels = x.shape[3]
    cols = rng.standard_normal((positions, kernel_h * kernel_w * channels), dtype=np.float32)
    kernel = layer.weight.data.reshape(-1, layer.filters)
    out = np.empty((positions, layer.filters), np.float32)
    grad = rng.standard_normal(out.shape, dtype=np.float32)
    kernel_grad = np.empty_like(kernel)
    blocks = np.empty((kernel_h * kernel_w, positions, channels), np.float32)
    per_offset = layer.weight.data.reshape(kernel_h * kernel_w, channels, layer.filters)
    forward_operands = wrap(cols), wrap(kernel), wrap(out)
    backward_operands = [(wrap(cols.T), wrap(grad), wrap(kernel_grad))]
    if layer.needs_input_grad:
        backward_operands += [
            (wrap(grad), wrap(per_offset[k].T), wrap(blocks[k])) for k in range(len(blocks))
        ]

    def forward():
        product(*forward_operands)

    def forward_backward():
        forward()
        for operands in backward_operands:
            product(*operands)

    return {f"{label} forward": forward, f"{label} fwd+bwd": forward_backward}


def one_gemm_col2im_cases(layer: Conv2D, x: np.ndarray) -> dict:
    """Conv2D's forward and kernel gradient, with the input gradient from one G @ W2.T."""
    batch, height, width, channels = x.shape
    kernel_h, kernel_w = layer.kernel_size
    out_h, out_w, filters = layer.output_shape
    (top, _), (left, _) = layer._paddings(height, width)
    grad = np.random.default_rng(5).standard_normal((batch * out_h * out_w, filters), np.float32)
    grad_cols = np.empty((len(grad), kernel_h * kernel_w * channels), np.float32)
    grad_windows = grad_cols.reshape(batch, out_h, out_w, kernel_h, kernel_w, channels)
    grad_padded = np.zeros((batch, *layer._padded_shape), np.float32)
    grad_in = np.empty_like(x)
    kernel = layer.weight.data.reshape(-1, filters)
    out = np.empty_like(grad)

    def forward_backward():  # (stride 1, as both layers here)
        cols = layer._im2col(x)[:, : kernel.shape[0]]  # without the bias's column of ones
        layer.blas.gemm(cols, kernel, out)
        layer.blas.gemm(cols.T, grad, layer.weight.grad.reshape(-1, filters))
        layer.blas.gemm(grad, kernel.T, grad_cols)
        grad_padded.fill(0)
        for i, j in np.ndindex(kernel_h, kernel_w):
            grad_padded[:, i : i + out_h, j : j + out_w] += grad_windows[:, :, :, i, j]
        np.copyto(grad_in, grad_padded[:, top : top + height, left : left + width])

    return {"one-GEMM col2im fwd+bwd": forward_backward}


def nchw_cases(layer: Conv2D, x: np.ndarray) -> dict:
    """im2col + GEMM written for NCHW: windows copied as (batch, C * kh * kw, positions), one
    GEMM per image (a batched matmul), col2im adds along image rows."""
    batch, height, width, channels = x.shape
    kernel_h, kernel_w = layer.kernel_size
    out_h, out_w, filters = layer.output_shape
    (top, bottom), (left, right) = layer._paddings(height, width)
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    padded = np.zeros((batch, channels, height + top + bottom, width + left + right), np.float32)
    cols = np.empty((batch, channels, kernel_h, kernel_w, out_h, out_w), np.float32)
    cols_matrix = cols.reshape(batch, channels * kernel_h * kernel_w, out_h * out_w)
    kernel = np.ascontiguousarray(layer.weight.data.transpose(3, 2, 0, 1)).reshape(filters, -1)
    out = np.empty((batch, filters, out_h * out_w), np.float32)
    grad = np.random.default_rng(3).standard_normal(out.shape, dtype=np.float32)
    per_image_kernel_grad = np.empty((batch, *kernel.shape), np.float32)
    kernel_grad = np.empty_like(kernel)
    grad_cols = np.empty_like(cols_matrix)
    grad_padded = np.empty_like(padded)

    def forward():
        padded[:, :, top : top + height, left : left + width] = x_nchw
        windows = sliding_window_view(padded, (kernel_h, kernel_w), axis=(2, 3))
        np.copyto(cols, windows.transpose(0, 1, 4, 5, 2, 3))
        np.matmul(kernel, cols_matrix, out=out)

    def forward_backward():
        forward()
        np.matmul(grad, cols_matrix.transpose(0, 2, 1), out=per_image_kernel_grad)
        np.sum(per_image_kernel_grad, axis=0, out=kernel_grad)
        if layer.needs_input_grad:
            np.matmul(kernel.T, grad, out=grad_cols)
            grad_padded.fill(0)
            blocks = grad_cols.reshape(batch, channels, kernel_h, kernel_w, out_h, out_w)
            for i in range(kernel_h):
                for j in range(kernel_w):
                    grad_padded[:, :, i : i + out_h, j : j + out_w] += blocks[:, :, i, j]

    return {"NCHW im2col forward": forward, "NCHW im2col fwd+bwd": forward_backward}


def shifted_gemm_cases(layer: Conv2D, x: np.ndarray, threads: int) -> dict:
    """Implicit im2col: 9 shifted GEMMs per product on the flattened padded images (stride 1)."""
    batch, height, width, channels = x.shape
    out_h, out_w, filters = layer.output_shape
    (top, _), (left, _) = layer._paddings(height, width)
    padded_h, padded_w, _ = layer._padded_shape
    rows = batch * padded_h * padded_w
    extra = (layer.kernel_size[0] - 1) * padded_w + layer.kernel_size[1]  # rows past the end
    padded = np.zeros((rows + extra, channels), np.float32)
    padded_images = padded[:rows].reshape(batch, padded_h, padded_w, channels)
    out = np.empty((rows, filters), np.float32)
    result = np.empty((batch, out_h, out_w, filters), np.float32)
    grad = np.zeros((rows, filters), np.float32)  # G on the padded grid, zero on its border
    grad[:] = np.random.default_rng(4).standard_normal(grad.shape, dtype=np.float32)
    grad.reshape(batch, padded_h, padded_w, filters)[:, out_h:] = 0
    grad.reshape(batch, padded_h, padded_w, filters)[:, :, out_w:] = 0
    grad_padded = np.empty_like(padded)
    grad_in = np.empty_like(x)
    kernel = layer.weight.data
    kernel_grad = np.empty_like(kernel)
    offsets = [(i, j, i * padded_w + j) for i, j in np.ndindex(*layer.kernel_size)]
    blas = Blas()

    def forward():
        padded_images[:, top : top + height, left : left + width] = x
        for k, (i, j, shift) in enumerate(offsets):
            blas.gemm(padded[shift : shift + rows], kernel[i, j], out, beta=float(k > 0))
        np.copyto(result, out.reshape(batch, padded_h, padded_w, filters)[:, :out_h, :out_w])

    def forward_backward():
        forward()
        for i, j, shift in offsets:
            blas.gemm(padded[shift : shift + rows].T, grad, kernel_grad[i, j])
        grad_padded.fill(0)
        for i, j, shift in offsets:
            blas.gemm(grad, kernel[i, j].T, grad_padded[shift : shift + rows], beta=1.0)
        grad_images = grad_padded[:rows].reshape(batch, padded_h, padded_w, channels)
        np.copyto(grad_in, grad_images[:, top : top + height, left : left + width])

    def in_scipy(case):
        def run():
            with blas.use(threads, "scipy"):
                case()

        return run

    return {
        "shifted GEMMs forward": in_scipy(forward),
        "shifted GEMMs fwd+bwd": in_scipy(forward_backward),
    }


def torch_cases(torch, layer: Conv2D, x: np.ndarray, first: bool) -> dict:
    """F.conv2d on the same data in PyTorch's default layout (NCHW)."""
    functional = torch.nn.functional
    x_t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    x_t.requires_grad_(not first)
    weight = torch.from_numpy(np.ascontiguousarray(layer.weight.data.transpose(3, 2, 0, 1)))
    weight.requires_grad_(True)
    bias = torch.zeros(layer.filters, requires_grad=True)
    padding = layer.padding if isinstance(layer.padding, str) else layer.padding[0]
    grad = torch.randn(functional.conv2d(x_t, weight, bias, padding=padding).shape)

    def forward():
        with torch.no_grad():
            functional.conv2d(x_t, weight, bias, padding=padding)

    def forward_backward():
        functional.conv2d(x_t, weight, bias, padding=padding).backward(grad)

    return {
        "torch conv2d forward": forward,
        "torch conv2d fwd+bwd": forward_backward,
        **floor_cases(
            layer,
            x,
            "floor: torch.mm (MKL)",
            lambda a, b, out: torch.mm(a, b, out=out),
            torch.from_numpy,
        ),
    }


def time_cases(cases: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each case, `repeats` times, in a new random order each round, after a rest."""
    times = {name: [] for name in cases}
    for _ in range(repeats):
        names = list(cases)
        random.shuffle(names)
        for name in names:
            time.sleep(REST)
            cases[name]()  # untimed: wakes the thread pools, as in a loop of its own
            started = time.perf_counter()
            cases[name]()
            times[name].append(time.perf_counter() - started)
    return times


if __name__ == "__main__":
    main()
