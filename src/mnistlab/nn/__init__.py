"""The neural-network building blocks: parameters, initializers, layers, activations, losses,
Sequential."""

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
from mnistlab.nn.init import get_initializer
from mnistlab.nn.layers import BatchNorm, Dense, Dropout
from mnistlab.nn.losses import MeanSquaredError, SoftmaxCrossEntropy, get_loss
from mnistlab.nn.model import Sequential, build_mlp
from mnistlab.nn.parameters import GradientSink, Parameter, ParameterSet

__all__ = [
    "BatchNorm",
    "Dense",
    "Dropout",
    "GradientSink",
    "Identity",
    "Layer",
    "LeakyReLU",
    "MeanSquaredError",
    "Parameter",
    "ParameterSet",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Tanh",
    "build_mlp",
    "get_activation",
    "get_initializer",
    "get_loss",
]
