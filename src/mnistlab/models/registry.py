"""Model names as used by `mnistlab train --model` and model.json."""

from mnistlab.models.gaussian import GaussianClassifier
from mnistlab.models.knn import KNeighborsClassifier
from mnistlab.models.logistic import OneVsAllLogistic
from mnistlab.models.mlp import MLPClassifier
from mnistlab.models.softmax import SoftmaxRegression

MODELS = {
    cls.model_name: cls
    for cls in (
        MLPClassifier,
        SoftmaxRegression,
        OneVsAllLogistic,
        GaussianClassifier,
        KNeighborsClassifier,
    )
}
