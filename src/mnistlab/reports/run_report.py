"""The report of one run: report.html in its run folder, one self-contained file.

The run folder's files (config.json, run.json where the run recorded one, metrics.json,
dataset.json, history.csv, the saved model, init_weights.npz where the trainer kept it) and the
run's data become a
`sections.ReportContent`, drawn as the sections that `sections.SECTIONS` lists.
`model_report.build_model_report` draws the same page from a model in memory.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

from mnistlab._io import write_text_atomic
from mnistlab.errors import DataError, UsageError
from mnistlab.experiments.run_folder import read_history, read_json
from mnistlab.experiments.runs import PreparedData, prepare_data
from mnistlab.models import load_model
from mnistlab.reports.analysis import layer_names
from mnistlab.reports.html import Figures
from mnistlab.reports.sections import SECTIONS, ReportContent, check_layer, render
from mnistlab.train.checkpoint import load_npz


def build_report(
    run_dir: str | os.PathLike,
    data: PreparedData | None = None,
    *,
    offline: bool | None = None,
    layer: int | None = None,
    figures: str | os.PathLike | None = None,
    figure_format: str = "png",
) -> Path:
    """Write run_dir/report.html from the run folder.

    ``build_report(run_dir, data)`` is the report hook `experiments.runs.train_run` takes.

    Parameters
    ----------
    run_dir : str or path-like
        A finished run's folder.
    data : PreparedData, optional
        The run's data when the caller has it (otherwise the dataset is loaded again).
    offline : bool, optional
        Never download the dataset (None: the MNISTLAB_OFFLINE setting).
    layer : int, optional
        The network layer whose activations are mapped (default: the last hidden one; negative
        counts from the end).
    figures : str or path-like, optional
        Also save every figure into this folder, as `figure_format` ("png" or "svg").

    Returns
    -------
    pathlib.Path
        The report's path, run_dir/report.html.
    """
    if figure_format not in ("png", "svg"):
        raise UsageError(f"figure format must be png or svg, got {figure_format!r}")
    if figures is not None:
        Path(figures).mkdir(parents=True, exist_ok=True)
    sink = Figures(None if figures is None else Path(figures), figure_format)
    run_dir = Path(run_dir)
    content = _load_run(run_dir, data, offline, layer)
    path = run_dir / "report.html"
    write_text_atomic(path, render(content, layer, sink))
    return path


def _load_run(run_dir: Path, data: PreparedData | None, offline, layer: int | None):
    """The run folder's files and model, checked before anything is drawn, and its data, as a
    ReportContent (classes numbered as in the dataset)."""
    config = read_json(run_dir / "config.json")
    metrics = read_json(run_dir / "metrics.json")
    dataset = read_json(run_dir / "dataset.json")
    model = load_model(run_dir)
    check_layer(model, layer, f"{run_dir} holds a {config.get('model')} model")
    history = read_history(run_dir)
    data = data if data is not None else prepare_data(config, offline=offline)
    proba = model.predict_proba(data.x_test)
    classes = np.asarray(model.classes_, dtype=np.int64)
    # probabilities for every class of the dataset, even one the training data lacked
    probabilities = np.zeros((proba.shape[0], len(dataset["class_names"])))
    probabilities[:, classes] = proba
    images = data.dataset
    n_validation = None if data.x_val is None else len(data.x_val)
    held_out = f", {n_validation} of them held out for validation" if n_validation else ""
    return ReportContent(
        title=f"mnistlab run: {run_dir.name}",
        config=config,
        model=model,
        history=history,
        metrics=metrics,
        class_names=list(dataset["class_names"]),
        image_shape=tuple(dataset["image_shape"]),
        x_test=data.x_test,
        y_test=data.y_test,
        test_images=images.x_test,
        predicted=classes[proba.argmax(axis=1)],
        confidence=proba.max(axis=1),
        x_train=data.x_train,
        y_train=data.y_train,
        train_images=images.x_train,
        train_labels=images.y_train,
        initial_weights=_initial_weights(model, run_dir),
        data_summary=(
            f"<p>{html.escape(images.name)} from {html.escape(images.source)}: "
            f"{images.n_train} training images{held_out}, and {images.n_test} test images, "
            f"of {'x'.join(map(str, images.image_shape))}.</p>"
        ),
        probabilities=probabilities,
        run_record=_run_record(run_dir),
        n_validation=n_validation,
    )


def _run_record(run_dir: Path) -> dict | None:
    """run.json (the command, version, commit and sources); None for a run folder from before
    it, or one whose record is damaged (the rest of the report does not depend on it)."""
    try:
        return read_json(run_dir / "run.json") if (run_dir / "run.json").exists() else None
    except DataError:
        return None


def _initial_weights(model, run_dir: Path) -> dict | None:
    """A network's weights saved before the first step, named as the summary names their
    layers (dense_0, dense_3, ...); None without init_weights.npz, for other models, or when
    the file does not hold them all."""
    if not hasattr(model, "model_") or not (run_dir / "init_weights.npz").exists():
        return None
    arrays, _ = load_npz(run_dir / "init_weights.npz")
    names = layer_names(model.model_)
    index = [i for i, layer in enumerate(model.model_.layers) if hasattr(layer, "weight")]
    initial = {names[i]: arrays[f"layer{i}.W"] for i in index if f"layer{i}.W" in arrays}
    return initial if len(initial) == len(index) else None


__all__ = ["SECTIONS", "build_report"]
