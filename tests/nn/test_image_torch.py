"""The image layers against PyTorch's functional ones (conv2d, max_pool2d, avg_pool2d,
batch_norm): the same outputs and gradients, to 1e-5 in float32.

mnistlab works channels last (NHWC, kernels (kh, kw, in, out)); PyTorch channels first (NCHW,
kernels (out, in, kh, kw)): the arrays are transposed on the way in and out.
"""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.nn import AvgPool2D, BatchNorm, Conv2D, MaxPool2D

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def to_torch(images: np.ndarray):
    """NHWC numpy -> NCHW torch tensor that records its gradient."""
    return torch.tensor(images.transpose(0, 3, 1, 2).copy(), requires_grad=True)


def from_torch(tensor) -> np.ndarray:
    """NCHW torch tensor -> NHWC numpy."""
    return tensor.detach().numpy().transpose(0, 2, 3, 1)


def torch_kernel(layer: Conv2D, requires_grad: bool = False):
    """The layer's kernel (kh, kw, in, out) as PyTorch's (out, in, kh, kw)."""
    kernel = layer.weight.data.transpose(3, 2, 0, 1).copy()
    return torch.tensor(kernel, requires_grad=requires_grad)


def build(layer, input_shape, seed=0):
    layer.build(input_shape, np.random.default_rng(seed), np.float32)
    layer.needs_input_grad = True
    return layer


def random_images(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize(
    "channels, kernel_size, stride, padding",
    [
        (3, 3, 1, "valid"),
        (3, 3, 1, "same"),
        (1, 3, 1, "same"),  # one channel: the transposed window layout
        (1, 5, 1, "valid"),
        (4, 3, 2, 1),
        (4, 3, 2, "same"),  # odd input: the extra zero row and column after
        (2, 1, 1, "valid"),
        (2, (2, 3), (1, 2), (1, 0)),
    ],
)
def test_conv2d_forward_and_gradients_equal_torch_conv2d(channels, kernel_size, stride, padding):
    x = random_images((4, 9, 8, channels))
    layer = build(Conv2D(5, kernel_size, stride, padding), x.shape[1:])
    layer.bias.data[:] = random_images((5,), seed=1)
    y = layer.forward(x, training=True)
    grad_out = random_images(y.shape, seed=2)
    grad_in = layer.backward(grad_out.copy())

    x_t = to_torch(x)
    weight_t = torch_kernel(layer, requires_grad=True)
    bias_t = torch.tensor(layer.bias.data.copy(), requires_grad=True)
    (top, bottom), (left, right) = layer._paddings(9, 8)
    padded_t = F.pad(x_t, (left, right, top, bottom))  # PyTorch pads symmetrically only
    y_t = F.conv2d(padded_t, weight_t, bias_t, stride=layer.stride)
    y_t.backward(to_torch(grad_out).detach())

    np.testing.assert_allclose(y, from_torch(y_t), **TOLERANCE)
    np.testing.assert_allclose(grad_in, from_torch(x_t.grad), **TOLERANCE)
    expected_kernel_grad = weight_t.grad.numpy().transpose(2, 3, 1, 0)
    np.testing.assert_allclose(layer.weight.grad, expected_kernel_grad, **TOLERANCE)
    np.testing.assert_allclose(layer.bias.grad, bias_t.grad.numpy(), **TOLERANCE)


def test_conv2d_symmetric_padding_equals_torch_conv2d_padding():
    x = random_images((2, 6, 6, 2))
    layer = build(Conv2D(3, 3, stride=2, padding=1), x.shape[1:])
    expected = F.conv2d(
        to_torch(x),
        torch.tensor(layer.weight.data.transpose(3, 2, 0, 1).copy()),
        stride=2,
        padding=1,
    )
    np.testing.assert_allclose(layer.forward(x), from_torch(expected), **TOLERANCE)


@pytest.mark.parametrize(
    "pool_size, stride, shape",
    [
        (2, None, (3, 8, 8, 4)),
        (2, None, (3, 7, 9, 4)),  # the last row and column belong to no window
        (3, 2, (2, 9, 7, 3)),  # overlapping windows
        ((2, 3), (3, 1), (2, 8, 7, 2)),
    ],
)
def test_max_pool_equals_torch_max_pool2d_with_ties(pool_size, stride, shape):
    # small integers: most windows hold ties, which must go to the same single winner
    x = np.random.default_rng(3).integers(0, 3, size=shape).astype(np.float32)
    layer = build(MaxPool2D(pool_size, stride), shape[1:])
    y = layer.forward(x, training=True)
    grad_out = random_images(y.shape, seed=4)
    grad_in = layer.backward(grad_out.copy())

    x_t = to_torch(x)
    y_t = F.max_pool2d(x_t, layer.pool_size, layer.stride)
    y_t.backward(to_torch(grad_out).detach())
    np.testing.assert_array_equal(y, from_torch(y_t))
    np.testing.assert_allclose(grad_in, from_torch(x_t.grad), **TOLERANCE)


@pytest.mark.parametrize(
    "pool_size, stride, shape",
    [(2, None, (3, 8, 8, 4)), (3, 2, (2, 9, 7, 3)), ((2, 3), (3, 1), (2, 7, 7, 2))],
)
def test_avg_pool_equals_torch_avg_pool2d(pool_size, stride, shape):
    x = random_images(shape, seed=5)
    layer = build(AvgPool2D(pool_size, stride), shape[1:])
    y = layer.forward(x, training=True)
    grad_out = random_images(y.shape, seed=6)
    grad_in = layer.backward(grad_out.copy())

    x_t = to_torch(x)
    y_t = F.avg_pool2d(x_t, layer.pool_size, layer.stride)
    y_t.backward(to_torch(grad_out).detach())
    np.testing.assert_allclose(y, from_torch(y_t), **TOLERANCE)
    np.testing.assert_allclose(grad_in, from_torch(x_t.grad), **TOLERANCE)


def test_batchnorm_on_images_equals_torch_batch_norm():
    x = random_images((6, 5, 4, 3), seed=7) * 2 + 1
    layer = build(BatchNorm(momentum=0.9, eps=1e-5), x.shape[1:])
    layer.gamma.data[:] = [0.5, 1.5, -1.0]
    layer.beta.data[:] = [0.1, -0.2, 0.3]
    y = layer.forward(x, training=True)
    grad_out = random_images(y.shape, seed=8)
    grad_in = layer.backward(grad_out.copy())

    x_t = to_torch(x)
    gamma_t = torch.tensor(layer.gamma.data.copy(), requires_grad=True)
    beta_t = torch.tensor(layer.beta.data.copy(), requires_grad=True)
    running_mean, running_var = torch.zeros(3), torch.ones(3)
    # PyTorch's momentum is the weight of the batch: 1 - ours. Its running variance takes the
    # unbiased batch variance, n / (n - 1) times ours.
    y_t = F.batch_norm(
        x_t, running_mean, running_var, gamma_t, beta_t, training=True, momentum=0.1, eps=1e-5
    )
    y_t.backward(to_torch(grad_out).detach())
    np.testing.assert_allclose(y, from_torch(y_t), **TOLERANCE)
    np.testing.assert_allclose(grad_in, from_torch(x_t.grad), **TOLERANCE)
    np.testing.assert_allclose(layer.gamma.grad, gamma_t.grad.numpy(), **TOLERANCE)
    np.testing.assert_allclose(layer.beta.grad, beta_t.grad.numpy(), **TOLERANCE)
    np.testing.assert_allclose(layer.running_mean, running_mean.numpy(), **TOLERANCE)
    n = 6 * 5 * 4
    ours_from_torch = 0.9 + (running_var.numpy() - 0.9) * (n - 1) / n
    np.testing.assert_allclose(layer.running_var, ours_from_torch, **TOLERANCE)

    # inference with the running statistics
    y_eval = layer.forward(x, training=False)
    expected = F.batch_norm(
        to_torch(x),
        torch.tensor(layer.running_mean),
        torch.tensor(layer.running_var),
        gamma_t,
        beta_t,
        training=False,
        eps=1e-5,
    )
    np.testing.assert_allclose(y_eval, from_torch(expected), **TOLERANCE)
