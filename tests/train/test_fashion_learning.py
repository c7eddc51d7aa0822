"""Learning on the full Fashion-MNIST (Debian package): >= 85% test accuracy after 2 epochs."""

import pytest

from conftest import needs_fashion
from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.models import MLPClassifier

pytestmark = [needs_fashion, pytest.mark.fashion, pytest.mark.slow]


def test_fashion_mnist_reaches_85_percent_after_two_epochs():
    data = load_dataset("fashion-mnist", offline=True)
    x, xt = flatten(to_float(data.x_train)), flatten(to_float(data.x_test))
    model = MLPClassifier(
        hidden_layer_sizes=(256, 128), epochs=2, batch_size=128, learning_rate=1e-3, random_state=0
    ).fit(x, data.y_train)
    assert model.score(xt, data.y_test) >= 0.85
