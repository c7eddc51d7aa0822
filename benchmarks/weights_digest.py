"""SHA-256 digests of the weights after a few epochs of training: a bit-exactness check.

Trains 784-100-200-10 on Fashion-MNIST with every optimizer path the engine has (plain SGD and
momentum, whose updates ride in the weight-gradient GEMMs; Nesterov, RMSprop, Adam and AdamW,
which step over the flat buffers; L2 and weight decay; BatchNorm and Dropout) at batch 32 and
128, and prints one digest per run. Run it before and after a change that must not alter the
arithmetic; the two outputs must be identical line for line.

    .venv/bin/python benchmarks/weights_digest.py [--epochs 2] [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np

from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.nn import build_mlp
from mnistlab.optim import get_optimizer
from mnistlab.train import Trainer

#: (optimizer, learning rate, extra optimizer options, trainer l2, model options)
RUNS = [
    ("sgd", 0.1, {}, 0.0, {}),
    ("sgd", 0.05, {"weight_decay": 1e-4}, 1e-4, {}),
    ("momentum", 0.05, {}, 0.0, {}),
    ("momentum", 0.05, {}, 1e-4, {"dropout": 0.2}),
    ("nesterov", 0.05, {}, 0.0, {}),
    ("rmsprop", 1e-3, {}, 0.0, {}),
    ("adam", 1e-3, {}, 0.0, {}),
    ("adam", 1e-3, {}, 1e-4, {"batchnorm": True}),
    ("adamw", 1e-3, {}, 0.0, {}),
]


def digest(model) -> str:
    sha = hashlib.sha256()
    for name, array in sorted(model.state_arrays().items()):
        sha.update(name.encode())
        sha.update(np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--limit", type=int, default=20000, help="training images used")
    args = parser.parse_args()
    data = load_dataset(args.dataset)
    x = flatten(to_float(data.x_train, data.pixel_max))[: args.limit]
    y = data.y_train[: args.limit]
    x_test = flatten(to_float(data.x_test, data.pixel_max))
    for batch_size in (32, 128):
        for optimizer, lr, options, l2, model_options in RUNS:
            model = build_mlp([100, 200], 10, **model_options).build(x.shape[1], seed=0)
            opt = get_optimizer(optimizer, model.parameters(), learning_rate=lr, **options)
            trainer = Trainer(model, opt, l2=l2)
            trainer.fit(x, y, epochs=args.epochs, batch_size=batch_size, seed=1)
            logits = digest_array(model.predict_logits(x_test[:2000]))
            label = f"{optimizer} lr={lr} {options or ''} l2={l2} {model_options or ''}"
            print(f"b{batch_size:<4} {label:<60} weights {digest(model)} logits {logits}")


def digest_array(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


if __name__ == "__main__":
    main()
