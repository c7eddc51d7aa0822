"""Classifiers with scikit-learn's conventions: the MLP and the classical models."""

from mnistlab.models.base import Classifier, load_model
from mnistlab.models.mlp import MLPClassifier
from mnistlab.models.registry import MODELS

__all__ = ["MODELS", "Classifier", "MLPClassifier", "load_model"]
