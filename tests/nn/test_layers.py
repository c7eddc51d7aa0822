"""Layer paths chosen by size or by BLAS setting give the same numbers as the plain formulas."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.nn import Dense, ReLU


@pytest.mark.parametrize("rows", [4, ReLU.ZEROS_ARRAY_UP_TO // 8 + 1])  # both forward paths
def test_relu_forward_and_backward_on_either_path(rows):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 8)).astype(np.float32)
    x[0, :3] = [np.nan, 0.0, -0.0]
    layer = ReLU()
    layer.build((8,), rng, np.float32)
    expected = np.maximum(x, 0)
    y = layer.forward(x.copy(), training=True)
    np.testing.assert_array_equal(y, expected)  # NaN stays NaN, zeros stay zeros
    grad = rng.standard_normal(x.shape).astype(np.float32)
    grad_in = layer.backward(grad.copy())
    np.testing.assert_array_equal(grad_in, grad * (expected > 0))
    # a second call reuses the work arrays and is not affected by the first
    x2 = -x
    np.testing.assert_array_equal(layer.forward(x2.copy(), training=True), np.maximum(x2, 0))


@pytest.mark.parametrize("library", [None, "numpy", "scipy"])
def test_dense_forward_adds_the_bias_exactly_with_or_without_a_blas_setting(library):
    rng = np.random.default_rng(1)
    layer = Dense(6)
    layer.build((5,), rng, np.float32)
    layer.bias.data[:] = rng.standard_normal(6)
    x = rng.standard_normal((7, 5)).astype(np.float32)
    expected = np.matmul(x, layer.weight.data) + layer.bias.data
    if library is None:
        out = layer.forward(x)
    else:
        with layer.blas.use(1, library):
            out = layer.forward(x)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
