"""The neural-network building blocks: parameters, initializers, layers (dense and, for images,
convolution, pooling and flattening), activations, losses, Sequential."""

from mnistlab.nn.activations import (
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    get_activation,
)
from mnistlab.nn.base import Layer
from mnistlab.nn.conv import Conv2D
from mnistlab.nn.init import get_initializer
from mnistlab.nn.layers import BatchNorm, Dense, Dropout, SpatialDropout2D
from mnistlab.nn.losses import MeanSquaredError, SoftmaxCrossEntropy, get_loss
from mnistlab.nn.model import Sequential, build_cnn, build_mlp
from mnistlab.nn.parameters import GradientSink, Parameter, ParameterSet
from mnistlab.nn.pooling import AvgPool2D, MaxPool2D
from mnistlab.nn.reshape import Flatten

__all__ = [
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GradientSink",
    "Identity",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "MeanSquaredError",
    "Parameter",
    "ParameterSet",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "SpatialDropout2D",
    "Tanh",
    "build_cnn",
    "build_mlp",
    "get_activation",
    "get_initializer",
    "get_loss",
]
