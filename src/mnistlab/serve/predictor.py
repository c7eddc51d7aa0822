"""A run folder's model ready to classify pictures: what `mnistlab predict` and the server share.

Predictor(run_dir) loads the model (mnistlab.models.load_model), the run's dataset.json (class
names, image shape, how its images were made) and metrics.json. Each picture is read by
mnistlab.data.images.read_gray and brought into the form of the training images by
mnistlab.data.preprocess.Preprocessing, then all are classified in one call. Model calls hold a
lock: a network's layers compute into work buffers of their own, which two threads must not share
(the server answers requests on a thread pool).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistlab.data.images import read_gray
from mnistlab.data.preprocess import Preprocessing
from mnistlab.errors import DataError
from mnistlab.experiments.run_folder import read_json
from mnistlab.models import load_model


@dataclass
class Prediction:
    """One picture's result.

    path: the picture's name (None for an unnamed upload); probabilities: (n_classes,) float,
    one per class index of the dataset (0 for a class the model never saw); input: the
    (height, width) image the model saw, in [0, 1]; class_names: one per class index.
    """

    path: str | None
    probabilities: np.ndarray
    input: np.ndarray
    class_names: Sequence[str]

    @property
    def label(self) -> int:
        """The likeliest class index (the first of equals, as argmax and predict() choose)."""
        return int(np.argmax(self.probabilities))

    def top(self, k: int) -> list[dict]:
        """The k likeliest classes, likeliest first: label, class, probability."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [
            {
                "label": int(i),
                "class": self.class_names[i],
                "probability": float(self.probabilities[i]),
            }
            for i in order
        ]

    def to_json(self, top: int | None = None) -> dict:
        """`predict --json`'s object: path, label, class, probabilities (full precision), and
        with `top` the `top` likeliest classes."""
        out = {
            "path": self.path,
            "label": self.label,
            "class": self.class_names[self.label],
            "probabilities": [float(p) for p in self.probabilities],
        }
        if top is not None:
            out["top"] = self.top(top)
        return out


def _dataset_json(path: Path) -> dict:
    """A run's dataset.json with what prediction reads checked: image_shape, two positive sizes;
    class_names, if any, a list of names (a shorter list is completed with class numbers)."""
    dataset = read_json(path)
    shape = dataset.get("image_shape")
    if not (
        isinstance(shape, list)
        and len(shape) == 2
        and all(isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in shape)
    ):
        raise DataError(f"{path}: image_shape must be [height, width], got {shape!r}")
    names = dataset.get("class_names")
    if names is not None and not (
        isinstance(names, list) and all(isinstance(name, str) for name in names)
    ):
        raise DataError(f"{path}: class_names must be a list of names, got {names!r}")
    return dataset


class Predictor:
    """A trained run that classifies pictures the way its training images were made.

    preprocess: a style that overrides the run's (mnistlab.data.preprocess.STYLES); invert:
    "auto", "yes" or "no".
    """

    def __init__(
        self, run_dir: str | os.PathLike, *, preprocess: str | None = None, invert: str = "auto"
    ) -> None:
        self.run_dir = Path(run_dir)
        self.model = load_model(self.run_dir)
        self.dataset = _dataset_json(self.run_dir / "dataset.json")
        metrics_path = self.run_dir / "metrics.json"
        self.metrics = read_json(metrics_path) if metrics_path.exists() else {}
        self.preprocessing = Preprocessing.from_run(self.dataset, style=preprocess, invert=invert)
        classes = np.asarray(self.model.classes_)
        names = list(self.dataset.get("class_names") or [])
        n_classes = max(len(names), int(classes.max()) + 1)
        self.class_names = names + [str(i) for i in range(len(names), n_classes)]
        self._columns = classes.astype(np.int64)
        pixels = math.prod(self.preprocessing.image_shape)
        if pixels != self.model.n_features_in_:
            raise DataError(
                f"{self.run_dir}: dataset.json's images have {pixels} pixels, the model takes "
                f"{self.model.n_features_in_}"
            )
        self._lock = threading.Lock()

    def prepare(self, source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
        """One picture (a path or encoded bytes) as the model's (height, width) input."""
        where = name or (str(source) if not isinstance(source, bytes) else "image")
        return self.preprocessing(read_gray(source, where), where)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """(n, n_classes) probabilities for (n, height, width) inputs, over the dataset's class
        indices."""
        x = np.asarray(inputs, dtype=np.float32).reshape(len(inputs), -1)
        with self._lock:
            proba = self.model.predict_proba(x)
        full = np.zeros((x.shape[0], len(self.class_names)), dtype=np.float64)
        full[:, self._columns] = proba
        return full

    def predict(self, source: str | os.PathLike | bytes, name: str | None = None) -> Prediction:
        """Read, preprocess and classify one picture; DataError if it cannot be used."""
        image = self.prepare(source, name)
        where = name if name is not None or isinstance(source, bytes) else str(source)
        return Prediction(where, self.probabilities(image[None])[0], image, self.class_names)

    def predict_files(self, paths: Sequence[str]) -> list[Prediction | DataError]:
        """A Prediction per path, or the DataError that its picture raised; one model call for
        all the usable pictures."""
        results: list[Prediction | DataError] = []
        images = []
        for path in paths:
            try:
                images.append(self.prepare(path))
                results.append(None)  # type: ignore[arg-type]
            except DataError as exc:
                results.append(exc)
        usable = [i for i, result in enumerate(results) if result is None]
        proba = self.probabilities(np.stack(images)) if images else np.empty((0, 0))
        for row, index in enumerate(usable):
            results[index] = Prediction(paths[index], proba[row], images[row], self.class_names)
        return results

    def describe(self) -> dict:
        """The model's summary, classes and test accuracy (the server's /api/model)."""
        summary = self.model.summary() if hasattr(self.model, "summary") else repr(self.model)
        return {
            "run": self.run_dir.name,
            "model": self.model.model_name,
            "summary": summary,
            "dataset": self.dataset.get("name"),
            "classes": self.class_names,
            "labels": np.asarray(self.model.classes_).tolist(),
            "image_shape": list(self.preprocessing.image_shape),
            "preprocess": self.preprocessing.style,
            "background": self.preprocessing.background,
            "test_accuracy": self.metrics.get("test_accuracy"),
            "n_test": self.metrics.get("n_test"),
        }
