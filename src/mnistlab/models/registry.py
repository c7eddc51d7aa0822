"""Model names as used by `mnistlab train --model` and model.json."""

from mnistlab.models.mlp import MLPClassifier

MODELS = {MLPClassifier.model_name: MLPClassifier}
