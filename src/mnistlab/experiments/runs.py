"""A training run: a configuration in, a run folder out.

The run folder holds config.json (everything needed to rerun it), dataset.json, model.json and
weights.npz, history.csv, metrics.json, and checkpoint.npz while it can still be resumed (see
`run_folder`). Used by `mnistlab train` and by anything that runs many trainings. A run's report
is built by whoever asks for one: `train_run` calls the `report` hook it is given.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mnistlab import __version__
from mnistlab._io import write_text_atomic
from mnistlab.data import Dataset, flatten, load_dataset, to_float, train_validation_split
from mnistlab.data.registry import REGISTRY
from mnistlab.errors import RunDiverged, TrainingInterrupted, UsageError
from mnistlab.experiments.config import make_model
from mnistlab.experiments.run_folder import read_history, write_json
from mnistlab.experiments.store import RunStore, default_store_path
from mnistlab.metrics import classification_summary, confusion_matrix, log_loss, top_k_accuracy
from mnistlab.train.callbacks import LambdaCallback
from mnistlab.train.checkpoint import read_npz_meta, save_npz


@dataclass
class PreparedData:
    """A run's data as its model takes it: the dataset, scaled to [0, 1] and flattened, with
    the validation split held out of the training rows.

    Parameters
    ----------
    dataset : Dataset
        The dataset as loaded (its raw images: the report shows them).
    x_train, y_train : ndarray
        Training rows (n_train, n_features) in the run's dtype, and their labels (n_train,).
    x_val, y_val : ndarray or None
        The held-out rows and labels, or None without a validation split.
    x_test, y_test : ndarray
        Test rows (n_test, n_features) and labels (n_test,).
    """

    dataset: Dataset
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray


def prepare_data(config: dict, *, offline: bool | None = None) -> PreparedData:
    """Load the dataset, scale to [0, 1] float, flatten, and hold out the validation split."""
    dataset = load_dataset(config["dataset"], data_dir=config["data_dir"], offline=offline)
    dtype = np.dtype(config["dtype"]).type
    x_train = flatten(to_float(dataset.x_train, dataset.pixel_max, dtype))
    x_test = flatten(to_float(dataset.x_test, dataset.pixel_max, dtype))
    y_train = dataset.y_train
    x_val = y_val = None
    if config["validation"] is not None:
        validation = config["validation"]
        if isinstance(validation, float) and validation.is_integer():
            validation = int(validation)
        x_train, y_train, x_val, y_val = train_validation_split(x_train, y_train, validation)
    return PreparedData(dataset, x_train, y_train, x_val, y_val, x_test, dataset.y_test)


#: Writes the report of a finished run from its folder and its data; returns the report's path.
#: A module-level function (as `mnistlab.reports.run_report.build_report` is), so that a task
#: that carries it can be pickled to a worker process.
RunReport = Callable[[Path, PreparedData], Path]


def default_run_dir(config: dict, root: str | Path = "runs") -> Path:
    """A new run folder's path: ``root/<date>-<time>-<model>-<dataset>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = Path(str(config["dataset"])).name.replace(" ", "_") or "data"
    return Path(root) / f"{stamp}-{config['model']}-{name}"


def machine() -> dict:
    """The machine and versions a run ran on (Python, NumPy, platform, CPU, cores, mnistlab)."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "mnistlab": __version__,
    }


def dataset_meta(dataset: Dataset) -> dict:
    """A run's dataset.json: the dataset's name, source, format, class names, image shape,
    pixel scale, split sizes and (from its registry entry) the box its images fill."""
    spec = REGISTRY.get(dataset.name)
    return {
        "box_fraction": spec.box_fraction if spec else 20 / 28,
        "name": dataset.name,
        "source": dataset.source,
        "format": dataset.format,
        "class_names": list(dataset.class_names),
        "image_shape": list(dataset.image_shape),
        "pixel_max": dataset.pixel_max,
        "n_train": dataset.n_train,
        "n_test": dataset.n_test,
    }


def finish_run(run_dir: Path, config: dict, model, data: PreparedData, train_seconds: float):
    """Save the model, history and metrics of a finished (or stopped) run; return the metrics."""
    model.save(run_dir)
    history = getattr(model, "history_", None)
    if history is not None:
        write_text_atomic(run_dir / "history.csv", history.to_csv())
    test = test_metrics(model, data.x_test, data.y_test, data.dataset.n_classes)
    metrics = {
        **{k: test[k] for k in ("test_accuracy", "test_loss", "test_errors", "n_test")},
        "train_seconds": train_seconds,
        "epochs_run": len(history) if history is not None else None,
        "dataset": data.dataset.name,
        "seed": config["seed"],
        "model": config["model"],
        "preset": config["preset"],
        "stop_reason": getattr(model, "stop_reason_", "") or None,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    if history is not None and history.records:
        last = history.records[-1]
        metrics["train_accuracy"] = last["accuracy"]
        metrics["train_loss"] = last["loss"]
        if "val_accuracy" in last:
            metrics["val_accuracy"] = last["val_accuracy"]
            metrics["val_loss"] = last["val_loss"]
    metrics.update({k: v for k, v in test.items() if k not in metrics})
    write_json(run_dir / "metrics.json", metrics)
    return metrics


def test_metrics(model, x_test, y_test, n_classes: int) -> dict:
    """Everything measured on the test split: accuracy, errors, loss, top-2, per-class scores,
    macro and weighted averages, and the confusion matrix (rows: true class)."""
    proba = model.predict_proba(x_test)
    n_classes = max(n_classes, int(np.max(model.classes_)) + 1, int(np.max(y_test)) + 1)
    # probabilities for every class index of the dataset, even if one was absent in training
    full = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    full[:, np.asarray(model.classes_, dtype=np.int64)] = proba
    predicted = full.argmax(axis=1)
    summary = classification_summary(y_test, predicted, n_classes)
    errors = int(np.count_nonzero(predicted != y_test))
    return {
        "test_accuracy": 1.0 - errors / y_test.size,
        "test_loss": log_loss(y_test, full, eps=1e-15),
        "test_errors": errors,
        "n_test": int(y_test.size),
        "test_top2_accuracy": top_k_accuracy(y_test, full, 2) if n_classes > 2 else 1.0,
        "per_class": summary["per_class"],
        "macro_avg": summary["macro"],
        "weighted_avg": summary["weighted"],
        "confusion_matrix": confusion_matrix(y_test, predicted, n_classes).tolist(),
    }


def epoch_line(logs: dict, epochs: int, label: str = "epoch") -> str:
    """One epoch's record as the line `mnistlab train` prints: losses, accuracies, learning
    rate and seconds."""
    parts = [
        f"{label} {logs['epoch']:>3}/{epochs}",
        f"loss {logs['loss']:.4f}",
        f"acc {logs['accuracy']:.4f}",
    ]
    if "val_loss" in logs:
        parts += [f"val_loss {logs['val_loss']:.4f}", f"val_acc {logs['val_accuracy']:.4f}"]
    parts += [f"lr {logs['learning_rate']:.3g}", f"{logs['seconds']:.2f}s"]
    return "  ".join(parts)


def train_run(
    config: dict,
    run_dir: Path,
    *,
    resume: bool = False,
    offline: bool | None = None,
    progress: bool | None = False,
    echo=print,
    report: RunReport | None = None,
    store: str | os.PathLike | None | bool = True,
    study: str | None = None,
    trial: str | None = None,
    data: PreparedData | None = None,
) -> dict:
    """Train `config` into `run_dir` (continuing its checkpoint if `resume`); return metrics.

    With `report`, also write the run's report: report(run_dir, data) once the run has finished
    (echoing its path). The run is recorded in the run store: `store` True means runs.db beside
    the run folder, a path means that database, False none.
    data: prepare_data(config) done beforehand (so that a dataset that cannot be read stops the
    command before a run folder or a store record exists); loaded here when None.
    """
    run_dir = Path(run_dir)
    if resume:
        check_resumable(config, run_dir)
    if store is False or store is None:
        return _train_run(config, run_dir, resume, offline, progress, echo, report, data)
    path = default_store_path(run_dir) if store is True else Path(store)
    with RunStore(path) as runs:
        run_id = runs.restart(run_dir.resolve(), config) if resume else None
        if run_id is None:
            run_id = runs.start(run_dir.resolve(), config, study=study, trial=trial)
        try:
            metrics = _train_run(config, run_dir, resume, offline, progress, echo, report, data)
        except BaseException as exc:
            runs.fail(run_id, f"{type(exc).__name__}: {exc}")
            raise
        runs.finish(run_id, metrics, read_history(run_dir))
        metrics["run_id"] = run_id
        return metrics


def resume_point(run_dir: Path) -> tuple[int | None, dict | None]:
    """Where resuming `run_dir` would start: the epochs its checkpoint has completed (None
    without a checkpoint), and the run's metrics if it also finished them (metrics.json written
    for that many epochs; None for a run stopped between its last epoch and its metrics)."""
    checkpoint = run_dir / "checkpoint.npz"
    if not checkpoint.exists():
        return None, None
    done = (read_npz_meta(checkpoint) or {}).get("epoch")
    if not isinstance(done, int):
        return None, None
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return done, None
    finished = isinstance(metrics, dict) and metrics.get("epochs_run") == done
    return done, metrics if finished else None


def check_resumable(config: dict, run_dir: Path) -> None:
    """UsageError when resuming `run_dir` with `config` would train nothing: an MLP run asked
    for fewer epochs than its checkpoint has done, or for as many when it also finished them.
    (Keras's fit with epochs <= initial_epoch returns silently; here the run folder's files
    would be rewritten as if it had trained.)"""
    if config["model"] != "mlp":
        return
    done, finished = resume_point(run_dir)
    if done is None or config["epochs"] > done or (config["epochs"] == done and not finished):
        return
    trained = f"{done} epoch" + ("s" if done != 1 else "")
    raise UsageError(
        f"nothing to resume: {run_dir} has already trained {trained} and asks for "
        f"{config['epochs']}; ask for more (--epochs N with N > {done}) to train it further"
    )


def _train_run(config, run_dir, resume, offline, progress, echo, report, data=None) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / "checkpoint.npz"
    # on resume too: config.json must say how many epochs the run is now trained for
    write_json(run_dir / "config.json", config)
    if data is None:
        data = prepare_data(config, offline=offline)
    write_json(run_dir / "dataset.json", dataset_meta(data.dataset))
    model = make_model(config, progress=progress)
    validation = (data.x_val, data.y_val) if data.x_val is not None else None
    if config["model"] != "mlp":
        return _train_classical(config, run_dir, model, data, validation, echo, report)

    def begin(trainer):
        echo(trainer.model.summary())
        initial = run_dir / "init_weights.npz"
        if trainer.step == 0 and not initial.exists():  # for "now versus at initialization"
            save_npz(initial, trainer.model.state_arrays())

    printer = LambdaCallback(
        on_train_begin=begin,
        on_epoch_end=lambda trainer, epoch, logs: echo(epoch_line(logs, trainer.epochs)),
    )
    started = time.perf_counter()
    try:
        model.fit(
            data.x_train,
            data.y_train,
            validation_data=validation,
            callbacks=[printer],
            checkpoint=checkpoint,
            resume_from=checkpoint if resume and checkpoint.exists() else None,
        )
    except TrainingInterrupted as exc:
        trainer = model.trainer_
        write_text_atomic(run_dir / "history.csv", trainer.history.to_csv())
        raise TrainingInterrupted(
            f"{exc}; continue with: mnistlab train --resume {run_dir}"
        ) from None
    train_seconds = sum(r["seconds"] for r in model.history_.records)
    metrics = finish_run(run_dir, config, model, data, train_seconds)
    metrics["wall_seconds"] = time.perf_counter() - started
    write_json(run_dir / "metrics.json", metrics)
    if model.diverged_:
        raise RunDiverged(
            f"training stopped: {model.stop_reason_}; the last finite weights are "
            f"saved in {run_dir}"
        )
    _report(run_dir, data, report, echo)
    return metrics


def _report(run_dir: Path, data: PreparedData, report: RunReport | None, echo) -> None:
    if report is not None:
        echo(f"report: {report(run_dir, data)}")


def _train_classical(config, run_dir, model, data, validation, echo, report) -> dict:
    """Fit a model that has no epochs to resume (softmax regression records its history)."""
    echo(f"fitting {model!r} on {data.x_train.shape[0]} images")
    started = time.perf_counter()
    if config["model"] == "softmax":
        model.fit(data.x_train, data.y_train, validation_data=validation)
        records = model.history_.records
        label = "epoch" if config["solver"] == "sgd" else "iteration"
        for record in records if label == "epoch" else records[-1:]:
            echo(epoch_line(record, records[-1]["epoch"], label=label))
    else:
        model.fit(data.x_train, data.y_train)
    fit_seconds = time.perf_counter() - started
    if getattr(model, "smoothing_", None) is not None:
        echo(f"smoothing c = {model.smoothing_:g}, shrinkage s = {model.shrinkage_:g}")
    metrics = finish_run(run_dir, config, model, data, fit_seconds)
    metrics["fit_seconds"] = fit_seconds
    if config["model"] == "softmax" and config["solver"] == "gd":
        metrics["epochs_run"], metrics["iterations"] = None, int(model.n_iter_)
    metrics["wall_seconds"] = time.perf_counter() - started
    write_json(run_dir / "metrics.json", metrics)
    _report(run_dir, data, report, echo)
    return metrics
