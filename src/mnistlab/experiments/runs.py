"""A training run: a configuration in, a run folder out.

The run folder holds config.json (everything needed to rerun it), dataset.json, model.json and
weights.npz, history.csv, metrics.json, and checkpoint.npz while it can still be resumed (see
`run_folder`). Used by `mnistlab train` and by anything that runs many trainings. A run's report
is built by whoever asks for one: `train_run` calls the `report` hook it is given.

A run holds its folder's claim from start to end (`run_folder.claim_run_folder`): two runs never
write into one folder. Every file is written atomically, so a run killed anywhere leaves a
folder that `--resume` either continues to the weights an uninterrupted run ends with, or
completes (a report or a store row that the kill left unwritten), or refuses in one line.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mnistlab import __version__
from mnistlab._io import write_text_atomic
from mnistlab.data import Dataset, flatten, load_dataset, to_float, train_validation_split
from mnistlab.data.augment import parse_augment
from mnistlab.data.preprocess import preprocess_meta
from mnistlab.errors import DataError, RunDiverged, TrainingInterrupted, UsageError
from mnistlab.experiments.config import NETWORK_MODELS, make_model, no_validation
from mnistlab.experiments.provenance import resumed_record, run_record
from mnistlab.experiments.run_folder import (
    check_same_split,
    claim_run_folder,
    finished_metrics,
    read_history,
    read_json,
    write_json,
)
from mnistlab.experiments.store import RunStore, default_store_path
from mnistlab.metrics import classification_summary, confusion_matrix, log_loss, top_k_accuracy
from mnistlab.train.callbacks import LambdaCallback
from mnistlab.train.checkpoint import read_npz_meta, save_npz
from mnistlab.train.interrupts import terminate_as_interrupt


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
    if not no_validation(config["validation"]):
        x_train, y_train, x_val, y_val = train_validation_split(
            x_train, y_train, config["validation"]
        )
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
    pixel scale, split sizes, and how its images were made (the preprocessing that predict and
    serve apply to new pictures: data.preprocess)."""
    return {
        "name": dataset.name,
        "source": dataset.source,
        "format": dataset.format,
        "class_names": list(dataset.class_names),
        "image_shape": list(dataset.image_shape),
        "pixel_max": dataset.pixel_max,
        "n_train": dataset.n_train,
        "n_test": dataset.n_test,
        **preprocess_meta(dataset),
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
        "diverged": bool(getattr(model, "diverged_", False)),
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
    check_augment_for_dataset(config)  # before the run folder is claimed: a refusal leaves none
    # SIGTERM (kill, docker stop, a cluster scheduler) stops the run as Ctrl-C does
    with terminate_as_interrupt(), claim_run_folder(run_dir, new=not resume):
        if resume:
            check_resumable(config, run_dir)
        finished = _finished_to_complete(config, run_dir) if resume else None
        if finished is not None:
            work = functools.partial(
                _complete_run, config, run_dir, finished, offline, echo, report, data
            )
        else:
            work = functools.partial(
                _train_run, config, run_dir, resume, offline, progress, echo, report, data
            )
        if store is False or store is None:
            _begin(config, run_dir, resume, finished)
            return work()
        path = default_store_path(run_dir) if store is True else Path(store)
        with RunStore(path) as runs:
            _begin(config, run_dir, resume, finished)
            return _recorded(runs, work, config, run_dir, resume, study, trial)


#: datasets of symbols that a mirror turns into other symbols (or none): no flip augmentation
MIRROR_SENSITIVE = ("mnist", "kmnist", "digits")


def check_augment_for_dataset(config: dict) -> None:
    """Refuse --augment flip for a dataset of digits or characters: a mirrored 2 is no 2."""
    spec = parse_augment(config.get("augment"))
    dataset = str(config.get("dataset"))
    if spec is not None and spec["flip"] and dataset in MIRROR_SENSITIVE:
        raise UsageError(
            f"--augment {config['augment']}: flip is not for --dataset {dataset} (a mirrored "
            "digit or character is another symbol); leave flip out"
        )


def _begin(config: dict, run_dir: Path, resume: bool, finished: dict | None) -> None:
    """The run folder's files as a run (re)starts: config.json (on resume too: it must say how
    many epochs the run is now trained for), no metrics.json until it finishes again, and
    run.json (the command, version and commit; on resume, the first command's record with this
    one added)."""
    record = run_dir / "run.json"
    if not resume:
        write_json(record, run_record(config))
    else:
        try:
            previous = read_json(record) if record.exists() else None
        except DataError:
            previous = None  # a damaged record is not worth refusing the resume for
        write_json(record, resumed_record(previous))
    if finished is None:
        write_json(run_dir / "config.json", config)
        (run_dir / "metrics.json").unlink(missing_ok=True)


def _recorded(runs: RunStore, work, config, run_dir: Path, resume, study, trial) -> dict:
    """`work()` with its row in the run store: running, then finished, failed or interrupted.

    A store that cannot take the last write (locked past its timeout, a full disk) does not
    turn a finished run into a failed command: a line says so, and `mnistlab runs list` or
    `--resume` records the run later from its folder."""
    run_id = runs.restart(run_dir.resolve(), config) if resume else None
    if run_id is None:
        run_id = runs.start(run_dir.resolve(), config, study=study, trial=trial)
    try:
        metrics = work()
    except (TrainingInterrupted, KeyboardInterrupt) as exc:
        _record_end(runs.interrupt, run_id, exc)
        raise
    except BaseException as exc:
        _record_end(runs.fail, run_id, exc)
        raise
    try:
        runs.finish(run_id, metrics, read_history(run_dir))
    except DataError as exc:
        print(
            f"mnistlab: the run finished in {run_dir}, but the run store did not record it "
            f"({exc}); `mnistlab runs list --db {runs.path}` records it once the store is free",
            file=sys.stderr,
        )
    metrics["run_id"] = run_id
    return metrics


def _record_end(record, run_id: int, exc: BaseException) -> None:
    """Record how a run ended; a store that cannot take it leaves the row for `reconcile`
    rather than hide the error that ended the run."""
    try:
        record(run_id, f"{type(exc).__name__}: {exc}")
    except DataError:
        pass


def _finished_to_complete(config: dict, run_dir: Path) -> dict | None:
    """The metrics of a run that a resume has nothing to train for: it finished every epoch
    it asks for (or stopped early, and asks for no more), killed or stopped before its report
    or store row were written. None when the resume trains."""
    metrics = finished_metrics(run_dir)
    if metrics is None:
        return None
    try:
        previous = read_json(run_dir / "config.json")
    except DataError:
        return None
    if previous.get("epochs") != config.get("epochs") or previous.get("model") != config["model"]:
        return None
    if config["model"] in NETWORK_MODELS and metrics.get("epochs_run") != config["epochs"]:
        return metrics if metrics.get("stop_reason") else None
    return metrics


def _complete_run(config, run_dir, metrics, offline, echo, report, data) -> dict:
    """Finish what a run killed after its metrics left undone: its report if it has none (a
    diverged run has none: it stops as it did); its store row is the caller's."""
    echo(f"{run_dir} has finished training; completing what is missing")
    if metrics.get("diverged"):
        raise RunDiverged(_diverged_message(run_dir, metrics.get("stop_reason")))
    if report is not None and not (run_dir / "report.html").exists():
        _report(run_dir, data or prepare_data(config, offline=offline), report, echo)
    return metrics


def _diverged_message(run_dir: Path, reason) -> str:
    return f"training stopped: {reason}; the last finite weights are saved in {run_dir}"


def resume_point(run_dir: Path) -> tuple[int | None, dict | None]:
    """Where resuming `run_dir` would start: the epochs its checkpoint has completed (None
    without a checkpoint), and the run's metrics if it finished them and nothing of it is
    missing (`missing_parts`). None for a run stopped between its last epoch and its metrics,
    or killed after them but before its report or store row: a resume completes those."""
    checkpoint = run_dir / "checkpoint.npz"
    if not checkpoint.exists():
        return None, None
    done = (read_npz_meta(checkpoint) or {}).get("epoch")
    if isinstance(done, bool) or not isinstance(done, int) or done < 0:
        raise DataError(
            f"{checkpoint}: the checkpoint's epoch is {done!r}, not a whole number >= 0 (a "
            f"damaged checkpoint: remove it to train the run from the start)"
        )
    metrics = finished_metrics(run_dir)
    if metrics is None or missing_parts(run_dir, metrics):
        return done, None
    return done, metrics


def missing_parts(run_dir: Path, metrics: dict) -> list[str]:
    """What a run that wrote `metrics` lacks: its report (a diverged run has none), and its
    row in the run store beside it, if that row still says 'running'."""
    missing = []
    if not metrics.get("diverged") and not (run_dir / "report.html").exists():
        missing.append("report.html")
    path = default_store_path(run_dir)
    if path.exists():
        with RunStore(path) as runs:
            row = runs.latest(run_dir.resolve())
        if row is not None and row["status"] == "running":
            missing.append(f"its row in {path}")
    return missing


def check_resumable(config: dict, run_dir: Path) -> None:
    """UsageError when resuming `run_dir` with `config` would train nothing: an MLP run asked
    for fewer epochs than its checkpoint has done, or for as many when it also finished them.
    (Keras's fit with epochs <= initial_epoch returns silently; here the run folder's files
    would be rewritten as if it had trained.)"""
    if config["model"] not in NETWORK_MODELS:
        return
    check_same_split(config, run_dir)
    done, finished = resume_point(run_dir)
    if done is None or config["epochs"] > done or (config["epochs"] == done and not finished):
        return
    trained = f"{done} epoch" + ("s" if done != 1 else "")
    raise UsageError(
        f"nothing to resume: {run_dir} has already trained {trained} and asks for "
        f"{config['epochs']}; ask for more (--epochs N with N > {done}) to train it further"
    )


def _train_run(config, run_dir, resume, offline, progress, echo, report, data=None) -> dict:
    checkpoint = run_dir / "checkpoint.npz"
    if data is None:
        data = prepare_data(config, offline=offline)
    write_json(run_dir / "dataset.json", dataset_meta(data.dataset))
    model = make_model(config, progress=progress)
    validation = (data.x_val, data.y_val) if data.x_val is not None else None
    if config["model"] not in NETWORK_MODELS:
        return _train_classical(config, run_dir, model, data, validation, echo, report)
    # a network learns the images' shape from its training data (a convolution, and
    # augmentation, work on images): the rows go in as images, without a copy
    shape = tuple(data.dataset.image_shape)
    if hasattr(model, "check_geometry"):  # before any file of the run is written
        model.check_geometry(shape, "cli")
    x_train = data.x_train.reshape(len(data.x_train), *shape)
    if validation is not None:
        validation = (data.x_val.reshape(len(data.x_val), *shape), data.y_val)

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
            x_train,
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
        raise RunDiverged(_diverged_message(run_dir, model.stop_reason_))
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
