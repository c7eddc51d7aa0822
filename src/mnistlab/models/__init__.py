"""Classifiers that are scikit-learn estimators (its base classes and input checks, mnistlab's
own computation): the MLP, the CNN and the classical models, their parameter tables, saving
and loading."""

from mnistlab.models.base import Classifier
from mnistlab.models.cnn import CNNClassifier
from mnistlab.models.gaussian import GaussianClassifier
from mnistlab.models.knn import KNeighborsClassifier
from mnistlab.models.logistic import OneVsAllLogistic
from mnistlab.models.mlp import MLPClassifier
from mnistlab.models.params import ParamSpec
from mnistlab.models.registry import MODELS, load_model
from mnistlab.models.softmax import SoftmaxRegression

__all__ = [
    "MODELS",
    "CNNClassifier",
    "Classifier",
    "GaussianClassifier",
    "KNeighborsClassifier",
    "MLPClassifier",
    "OneVsAllLogistic",
    "ParamSpec",
    "SoftmaxRegression",
    "load_model",
]
