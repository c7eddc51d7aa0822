"""Central-difference gradient checks (float64) for the image layers: Conv2D in every padding
and stride, a 1x1 kernel, odd sizes, one input channel; MaxPool2D and AvgPool2D with strides
equal to and different from the pool size; BatchNorm, Dropout and SpatialDropout2D on images;
Flatten."""

from __future__ import annotations

import numpy as np
import pytest
from test_gradients import check_model as check_dense_model

from mnistlab.nn import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    SpatialDropout2D,
    Tanh,
)


def check_model(layers, x, labels, training=True):
    """test_gradients.check_model at a tolerance of 1e-5: a central difference of a loss that
    sums a few hundred products is exact to ~1e-10, which is more than 1e-6 of the smallest
    gradients here (a bug is off by far more than either)."""
    check_dense_model(layers, x, labels, training=training, tolerance=1e-5)


def images(batch, height, width, channels, seed=0):
    """Random images and labels in 3 classes."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, height, width, channels)), rng.integers(0, 3, size=batch)


@pytest.mark.parametrize(
    "kernel_size, stride, padding",
    [
        (3, 1, "valid"),
        (3, 1, "same"),
        (3, 2, "valid"),
        (3, 2, "same"),  # odd input: the extra zero row goes below
        (3, 2, 1),
        ((2, 3), (2, 1), (1, 0)),
        (1, 1, "valid"),  # a 1x1 kernel: cols is the input itself
        (1, 2, "same"),
        (4, 1, "same"),  # even kernel: padding (1, 2)
        (5, 3, 2),
    ],
)
def test_conv2d(kernel_size, stride, padding):
    x, y = images(2, 7, 6, 3)
    check_model([Conv2D(4, kernel_size, stride, padding), Flatten(), Dense(3)], x, y)


def test_conv2d_whose_windows_miss_the_image_on_one_axis():
    # one row, padded by one above and below, every 3rd row: the only window row lies in the
    # padding, so no input gets a gradient along it
    x, y = images(2, 1, 5, 2)
    check_model([Conv2D(3, 1, stride=3, padding=1), Flatten(), Dense(3)], x, y)


@pytest.mark.parametrize("stride, padding", [(1, "same"), (1, "valid"), (2, 1)])
def test_conv2d_with_one_input_channel(stride, padding):
    # at stride 1, one channel takes the (kernel offsets, positions) layout of the windows
    x, y = images(3, 5, 7, 1)
    check_model([Conv2D(2, 3, stride, padding), Flatten(), Dense(3)], x, y)


def test_conv2d_without_bias_in_a_stack_of_two():
    x, y = images(2, 7, 7, 2)
    layers = [Conv2D(3, 3, padding="same", use_bias=False), Tanh(), Conv2D(2, 3, stride=2)]
    check_model([*layers, Flatten(), Dense(3)], x, y)


@pytest.mark.parametrize(
    "pool, pool_size, stride",
    [
        (MaxPool2D, 2, None),  # windows side by side (on the even input, covering it)
        (MaxPool2D, 2, 3),  # gaps between the windows
        (MaxPool2D, 3, 2),  # overlapping windows
        (MaxPool2D, (2, 3), (3, 1)),  # gaps between rows of windows, overlap along the rows
        (MaxPool2D, 1, 2),  # a window of one input
        (AvgPool2D, 2, None),
        (AvgPool2D, 3, 2),
        (AvgPool2D, (2, 3), (3, 1)),
    ],
)
@pytest.mark.parametrize("height, width", [(6, 6), (7, 5)])
def test_pooling_after_a_convolution(pool, pool_size, stride, height, width):
    x, y = images(2, height, width, 2, seed=1)
    layers = [Conv2D(3, 2, padding="same"), pool(pool_size, stride), Flatten(), Dense(3)]
    check_model(layers, x, y)


def test_relu_after_max_pool():
    x, y = images(2, 6, 6, 2, seed=6)
    check_model([Conv2D(3, 3, padding="same"), MaxPool2D(2), ReLU(), Flatten(), Dense(3)], x, y)


def test_pooling_as_the_layer_after_the_input():
    x, y = images(2, 5, 5, 2, seed=2)
    check_model([MaxPool2D(2, 1), Flatten(), Dense(3)], x, y)
    check_model([AvgPool2D(2, 1), Flatten(), Dense(3)], x, y)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_over_the_channels_of_images(training):
    x, y = images(3, 5, 4, 2, seed=3)
    layers = [
        Conv2D(3, 3, padding="same", use_bias=False),
        BatchNorm(),
        ReLU(),
        Flatten(),
        Dense(3),
    ]
    check_model(layers, x, y, training=training)


def test_dropout_and_spatial_dropout_with_fixed_masks():
    x, y = images(2, 4, 4, 2, seed=4)
    mask_rng = np.random.default_rng(5)
    dropout = Dropout(0.5)
    dropout.fixed_mask = mask_rng.random((2, 4, 4, 3)) >= 0.5
    spatial = SpatialDropout2D(0.4)
    spatial.fixed_mask = np.array([1, 0, 1, 1, 1, 0]).reshape(2, 1, 1, 3).astype(bool)
    layers = [Conv2D(3, 3, padding="same"), dropout, Tanh(), spatial, Flatten(), Dense(3)]
    check_model(layers, x, y)
