"""Softmax (multinomial logistic) regression, from scratch: full-batch gradient descent or
minibatch SGD, either with a linear learning-rate decay.

p(y = k | x) = softmax(x W + b)_k with W: (n_features, n_classes), b: (n_classes,); the loss is the
mean cross-entropy plus 0.5 * l2 * ||W||^2. Minibatch training runs on the same engine as the MLP
(a single Dense layer); full-batch gradient descent is a plain loop over the whole training set,
its gradient written out in softmax_loss_and_gradient.
"""

from __future__ import annotations

import time

import numpy as np

from mnistlab.metrics import log_loss
from mnistlab.models.base import LogScoreClassifier
from mnistlab.models.params import (
    BATCH_SIZE,
    DTYPE,
    EPOCHS,
    L2,
    LEARNING_RATE,
    RANDOM_STATE,
    ParamSpec,
)
from mnistlab.nn import Dense, Sequential
from mnistlab.nn.functional import softmax
from mnistlab.optim import SGD
from mnistlab.optim.schedules import Constant, LinearDecay, Schedule
from mnistlab.train import TerminateOnNaN, Trainer
from mnistlab.train.trainer import History


def softmax_loss_and_gradient(weights, bias, X, onehot, l2: float = 0.0):
    """Mean cross-entropy + 0.5 * l2 * ||W||^2 and its gradients at (W: (d, k), b: (k,)).

    Returns (loss, grad_W, grad_b, probs); the gradient of the mean cross-entropy with respect to
    the logits is (softmax - onehot) / n.
    """
    n = X.shape[0]
    probs = softmax(X @ weights + bias)
    picked = np.sum(probs * onehot, axis=1)
    loss = float(-np.mean(np.log(np.maximum(picked, np.finfo(probs.dtype).tiny))))
    loss += 0.5 * l2 * float(np.sum(weights * weights))
    delta = (probs - onehot) / n
    grad_w = X.T @ delta
    if l2:
        grad_w += l2 * weights
    return loss, grad_w, delta.sum(axis=0), probs


class SoftmaxRegression(LogScoreClassifier):
    """Multinomial logistic regression: ``p(y = k | x) = softmax(x W + b)_k``.

    Parameters
    ----------
    solver : {"sgd", "gd"}, default="sgd"
        "sgd": minibatches, ``epochs`` passes, the learning rate decaying linearly from
        ``learning_rate`` to ``final_learning_rate`` over all steps; "gd": full-batch gradient
        descent, ``iterations`` steps.
    learning_rate : float, default=0.5
        The initial learning rate (option ``--lr``).
    final_learning_rate : float or None, default=0.005
        The learning rate of the last step (option ``--final-lr``); None keeps it constant.
    epochs : int, default=10
        Passes over the data for "sgd".
    iterations : int, default=1000
        Steps of "gd".
    batch_size : int, default=100
        Rows per minibatch for "sgd".
    l2 : float, default=0.0
        Penalty ``0.5 * l2 * ||W||^2`` (the intercept is not penalized).
    record_every : int, default=10
        For "gd": record loss and accuracy every this many iterations.
    random_state : int, default=0
        Seeds the order of the minibatches (configuration key and option: ``seed``).
    dtype : str, default="float32"
        float32 or float64: the weights' and the computation's type.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit, sorted.
    n_features_in_ : int
        Features (pixels) of each row.
    coef_ : ndarray of shape (n_classes, n_features)
        One weight vector per class (viewable as an image).
    intercept_ : ndarray of shape (n_classes,)
        The biases.
    history_ : mnistlab.train.History
        Loss and accuracy per epoch ("sgd") or every ``record_every`` iterations ("gd").
    n_iter_ : int
        Steps taken.
    stop_reason_ : str
        Why training stopped early ("" if it did not).
    """

    model_name = "softmax"
    # its errors read like the run configuration's, which quote the bare value
    error_style = "python"
    learned_attributes = ("classes_", "coef_", "intercept_")
    param_specs = (
        ParamSpec(
            "solver",
            "choice",
            choices=("sgd", "gd"),
            help="sgd (minibatches, linear decay) or gd",
        ),
        LEARNING_RATE,
        ParamSpec(
            "final_learning_rate",
            "float",
            low=0,
            closed="neither",
            none=True,
            key="final_lr",
            metavar="LR",
            help="learning rate reached at the end of the linear decay",
        ),
        EPOCHS,
        ParamSpec("iterations", "int", low=1, metavar="N", help="gd steps"),
        BATCH_SIZE,
        L2,
        ParamSpec("record_every", "int", low=1, key=None),
        RANDOM_STATE,
        DTYPE,
    )

    def __init__(
        self,
        solver: str = "sgd",
        learning_rate: float = 0.5,
        final_learning_rate: float | None = 0.005,
        epochs: int = 10,
        iterations: int = 1000,
        batch_size: int = 100,
        l2: float = 0.0,
        record_every: int = 10,
        random_state: int = 0,
        dtype: str = "float32",
    ) -> None:
        self.solver = solver
        self.learning_rate = learning_rate
        self.final_learning_rate = final_learning_rate
        self.epochs = epochs
        self.iterations = iterations
        self.batch_size = batch_size
        self.l2 = l2
        self.record_every = record_every
        self.random_state = random_state
        self.dtype = dtype

    def fit(self, X, y, validation_data=None):
        """Fit on X (n, features) and y (n,) labels; (X_val, y_val) in ``validation_data`` is
        evaluated into the history. Returns self."""
        self._validate_params()
        X, y_index = self._validate_training_data(X, y)
        dtype = np.dtype(self.dtype)
        X = np.ascontiguousarray(X, dtype=dtype)
        if validation_data is not None:
            x_val, y_val = self._check_validation(X, validation_data)
            validation_data = (x_val.astype(dtype, copy=False), y_val)
        if self.solver == "gd":
            self._fit_gd(X, y_index, validation_data)
        else:
            self._fit_sgd(X, y_index, validation_data)
        return self

    def _fit_sgd(self, X, y, validation):
        model = Sequential([Dense(self.classes_.size, init="zeros")])
        model.build(X.shape[1], seed=self.random_state, dtype=self.dtype)
        steps = -(-X.shape[0] // self.batch_size) * self.epochs
        final = self.final_learning_rate
        schedule = LinearDecay(
            self.learning_rate,
            tau=steps,
            final_learning_rate=final if final is not None else self.learning_rate,
        )
        trainer = Trainer(
            model,
            SGD(model.parameters(), learning_rate=self.learning_rate),
            schedule=schedule,
            l2=self.l2,
            callbacks=[TerminateOnNaN()],
        )
        trainer.fit(
            X,
            y,
            validation=validation,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.random_state,
        )
        dense = model.layers[0]
        self.coef_ = dense.weight.data.T.copy()
        self.intercept_ = dense.bias.data.copy()
        self.history_ = trainer.history
        self.n_iter_ = trainer.step
        self.stop_reason_ = trainer.stop_reason

    def _fit_gd(self, X, y, validation):
        """Full-batch gradient descent: W -= lr * (X^T (P - Y) / n + l2 W)."""
        n, d = X.shape
        k = self.classes_.size
        dtype = X.dtype
        weights = np.zeros((d, k), dtype=dtype)
        bias = np.zeros(k, dtype=dtype)
        onehot = np.zeros((n, k), dtype=dtype)
        onehot[np.arange(n), y] = 1
        history = History()
        started = time.perf_counter()
        schedule = self._gd_schedule()
        self.stop_reason_ = ""
        for iteration in range(self.iterations):
            lr = schedule(iteration)
            loss, grad_w, grad_b, probs = softmax_loss_and_gradient(
                weights, bias, X, onehot, self.l2
            )
            if iteration % self.record_every == 0 or iteration == self.iterations - 1:
                record = {
                    "epoch": iteration,
                    "loss": loss,
                    "accuracy": float(np.mean(probs.argmax(axis=1) == y)),
                }
                if validation is not None:
                    x_val, y_val = validation
                    val_probs = softmax(x_val @ weights + bias)
                    record["val_loss"] = log_loss(y_val, val_probs, eps=1e-30)
                    record["val_accuracy"] = float(np.mean(val_probs.argmax(axis=1) == y_val))
                record["learning_rate"] = lr
                record["seconds"] = time.perf_counter() - started
                history.append(record)
            if not np.isfinite(loss):
                self.stop_reason_ = f"loss became {loss} at iteration {iteration}"
                break
            weights -= lr * grad_w
            bias -= lr * grad_b
        self.coef_ = weights.T.copy()
        self.intercept_ = bias
        self.history_ = history
        self.n_iter_ = iteration + 1

    def _gd_schedule(self) -> Schedule:
        """The learning rate of each gd iteration: constant, or decaying linearly so that the last
        iteration uses final_learning_rate."""
        if self.final_learning_rate is None:
            return Constant(self.learning_rate)
        return LinearDecay(
            self.learning_rate,
            tau=max(self.iterations - 1, 1),
            final_learning_rate=self.final_learning_rate,
        )

    def _log_scores(self, X) -> np.ndarray:
        """The logits x W + b: (n, n_classes)."""
        X = self._validate_X(X)
        return X.astype(self.coef_.dtype, copy=False) @ self.coef_.T + self.intercept_

    def _arrays(self):
        return {"coef": self.coef_, "intercept": self.intercept_}

    def _expected_arrays(self, n_classes, n_features):
        return {"coef": ((n_classes, n_features), "f"), "intercept": ((n_classes,), "f")}

    def _restore(self, meta, arrays):
        self.coef_, self.intercept_ = arrays["coef"], arrays["intercept"]
