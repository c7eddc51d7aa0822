"""Conv2D through Winograd's F(2x2, 3x3) (nn.winograd): the same outputs and gradients as
PyTorch's conv2d (float32: to 1e-5 of each array's largest magnitude, since the transforms add
and subtract terms of that size before the products) and as the im2col route (float64, to
rounding), central-difference gradient checks, chunks of images, and the stacked products under
SciPy's BLAS."""

from __future__ import annotations

import numpy as np
import pytest
from test_image_gradients import check_model, images

from mnistlab.backend.blas import Blas
from mnistlab.nn import Conv2D, Dense, Flatten, Tanh
from mnistlab.nn import winograd as winograd_module
from mnistlab.nn.winograd import applies

CASES = [
    # (height, width, channels, padding): even and odd outputs, each kind of padding
    (9, 8, 4, "valid"),
    (9, 7, 6, "same"),
    (8, 8, 5, 2),
    (5, 7, 4, (1, 0)),
    (14, 14, 8, "same"),
]


def build(layer, input_shape, dtype=np.float32, seed=0):
    layer.build(input_shape, np.random.default_rng(seed), dtype)
    layer.needs_input_grad = True
    return layer


def run(layer, x, grad_out):
    y = layer.forward(x, training=True).copy()
    grad_in = layer.backward(grad_out.copy()).copy()
    bias = layer.bias.grad.copy() if layer.bias is not None else None
    return y, grad_in, layer.weight.grad.copy(), bias


def test_applies_to_3x3_stride_1_kernels_over_several_channels():
    assert applies((3, 3), (1, 1), 4)
    assert not applies((3, 3), (1, 1), 1)  # a first layer: im2col's outer products are faster
    assert not applies((3, 3), (2, 2), 8)
    assert not applies((5, 5), (1, 1), 8)
    assert build(Conv2D(4, 3, padding="same"), (6, 6, 4))._winograd is not None
    assert build(Conv2D(4, 3, padding="same"), (6, 6, 1))._winograd is None


@pytest.mark.parametrize("height, width, channels, padding", CASES)
@pytest.mark.parametrize("use_bias", [True, False])
def test_winograd_conv2d_equals_torch_conv2d(height, width, channels, padding, use_bias):
    torch = pytest.importorskip("torch")
    from test_image_torch import from_torch, to_torch, torch_kernel

    def close(got, expected):
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)

    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, height, width, channels)).astype(np.float32)
    layer = build(Conv2D(5, 3, padding=padding, use_bias=use_bias), x.shape[1:])
    assert layer._winograd is not None
    if use_bias:
        layer.bias.data[:] = rng.normal(size=5)
    grad_out = rng.normal(size=(3, *layer.output_shape)).astype(np.float32)
    y, grad_in, kernel_grad, bias_grad = run(layer, x, grad_out)

    x_t = to_torch(x)
    weight_t = torch_kernel(layer, requires_grad=True)
    bias_t = torch.tensor(layer.bias.data.copy(), requires_grad=True) if use_bias else None
    (top, bottom), (left, right) = layer._paddings(height, width)
    padded_t = torch.nn.functional.pad(x_t, (left, right, top, bottom))
    y_t = torch.nn.functional.conv2d(padded_t, weight_t, bias_t)
    y_t.backward(to_torch(grad_out).detach())

    close(y, from_torch(y_t))
    close(grad_in, from_torch(x_t.grad))
    close(kernel_grad, weight_t.grad.numpy().transpose(2, 3, 1, 0))
    if use_bias:
        close(bias_grad, bias_t.grad.numpy())


@pytest.mark.parametrize("height, width, channels, padding", CASES)
def test_winograd_equals_im2col_in_float64_also_in_chunks(
    height, width, channels, padding, monkeypatch
):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, height, width, channels))
    winograd = build(Conv2D(3, 3, padding=padding), x.shape[1:], np.float64)
    im2col = build(Conv2D(3, 3, padding=padding), x.shape[1:], np.float64)
    im2col._winograd = None
    winograd.bias.data[:] = im2col.bias.data[:] = rng.normal(size=3)
    grad_out = rng.normal(size=(5, *winograd.output_shape))
    expected = run(im2col, x, grad_out)
    whole = run(winograd, x, grad_out)
    monkeypatch.setattr(winograd_module, "CHUNK_BYTES", 1)  # one image per chunk
    chunked = run(winograd, x, grad_out)
    for got in (whole, chunked):
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", ["valid", "same", 1])
def test_winograd_conv2d_gradient_check(padding):
    x, y = images(2, 7, 6, 4)
    layers = [Conv2D(4, 3, padding=padding), Tanh(), Conv2D(3, 3, padding=padding)]
    check_model([*layers, Flatten(), Dense(3)], x, y)
    assert layers[0]._winograd is not None and layers[2]._winograd is not None


def test_winograd_under_scipys_blas_equals_numpys():
    """Under SciPy's BLAS (inference on one core), Blas.gemm_stack loops over the stack (f2py
    copies the strided operands), and gives NumPy's results."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 8, 8, 6)).astype(np.float32)
    layer = build(Conv2D(7, 3, padding="same"), x.shape[1:])
    layer.bias.data[:] = rng.normal(size=7)
    blas = Blas()
    layer.blas = blas
    with blas.training(1):
        expected = layer.forward(x).copy()
    with blas.use(1, "scipy"):
        got = layer.forward(x).copy()
        assert layer._by_winograd
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_with_several_blas_threads_the_layer_runs_im2col_and_backward_follows_forward():
    """The transforms run on one core: with the products on two threads, im2col's one large
    GEMM is the route; backward takes the route of the forward pass before it."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 6, 6, 4))
    layer = build(Conv2D(5, 3, padding="same"), x.shape[1:], np.float64)
    grad_out = rng.normal(size=(3, *layer.output_shape))
    blas = Blas()
    layer.blas = blas
    results = {}
    for threads in (1, 2):
        with blas.use(threads, "numpy"):
            results[threads] = run(layer, x, grad_out)
            assert layer._by_winograd == (threads == 1)
    for a, b in zip(results[1], results[2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    with blas.use(2, "numpy"):
        layer.forward(x, training=True)
    grad_in = layer.backward(grad_out.copy())  # outside the setting: im2col's windows, as kept
    np.testing.assert_allclose(grad_in, results[1][1], rtol=1e-12, atol=1e-12)


def test_gemm_stack_matches_matmul_in_both_libraries():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(4, 2, 10, 6)).astype(np.float32)
    b = rng.normal(size=(4, 2, 6, 3)).astype(np.float32)
    rows = np.zeros((4, 2, 10, 2, 6), np.float32)
    rows[..., 0, :] = a  # rows two apart, as the transforms leave them
    strided = rows[..., 0, :]
    blas = Blas()
    for library in ("numpy", "scipy"):
        out = np.empty((4, 2, 10, 3), np.float32)
        with blas.use(1, library):
            blas.gemm_stack(strided, b, out)
        np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
