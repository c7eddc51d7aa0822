"""The self-contained HTML report of a run (and the comparison of several runs).

One file, every image embedded as a base64 PNG, no script or style from elsewhere: it opens with no
network and no server. Sections: configuration, model, training history and curves, metrics and
classification report, confusion matrix and per-class accuracy, most confident mistakes, what the
model learned (weights as images, weight distributions now versus at initialization), a 2-D map of
a layer's activations, the data, and timing and machine.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import re
from pathlib import Path

import numpy as np

from mnistlab._io import atomic_path, write_text_atomic
from mnistlab.errors import DataError, UsageError
from mnistlab.reports import plots

SECTIONS = (
    "configuration",
    "model",
    "history",
    "metrics",
    "confusion",
    "mistakes",
    "learned",
    "activations",
    "data",
    "timing",
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
img { max-width: 100%; display: block; margin: .5em 0; }
nav a { margin-right: 1em; }
"""
# Counts images that decoded, so a headless browser can check the report without a network.
SCRIPT = """
window.addEventListener("load", function () {
  var images = document.images, ok = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) ok++;
  }
  document.body.setAttribute("data-images-total", images.length);
  document.body.setAttribute("data-images-decoded", ok);
});
"""


#: when set (by build_report), every figure is also saved here as a file: (folder, format)
_FIGURE_SINK: list = []


def _img(fig, alt: str) -> str:
    if _FIGURE_SINK:
        folder, fmt = _FIGURE_SINK[0]
        name = re.sub(r"[^a-z0-9]+", "-", alt.lower()).strip("-")
        with atomic_path(Path(folder) / f"{name}.{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight", dpi=100)
    data = base64.b64encode(plots.figure_png_bytes(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(rows, header=None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}">\n<h2>{html.escape(title)}</h2>\n{body}\n</section>'


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing (is {path.parent} a finished run folder?)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


#: history columns that, where the header has them, every row must fill
CURVE_KEYS = ("val_loss", "val_accuracy")


def read_history(run_dir: Path) -> list[dict]:
    """history.csv of a run folder as one dict per epoch ([] where there is none: classical
    models); DataError for a file that is not what the trainer writes."""
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    history = []
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():  # more or fewer fields than the header names
            raise DataError(f"{path}: line {line} does not have one value per column of the header")
        # what every epoch of a run records, and the plots read from every row
        required = ["epoch", "loss", "accuracy", *(k for k in CURVE_KEYS if k in row)]
        blank = [k for k in required if not row.get(k)]
        if blank:
            raise DataError(f"{path}: line {line} has no value for {', '.join(sorted(blank))}")
        try:
            history.append(
                {k: (float(v) if k != "epoch" else int(float(v))) for k, v in row.items() if v}
            )
        except ValueError as exc:
            raise DataError(f"{path}: line {line} is not a row of numbers ({exc})") from None
    return history


def _model_summary(model) -> str:
    if hasattr(model, "model_"):
        return f"<pre>{html.escape(model.summary())}</pre>"
    params = _table(sorted(model.get_params().items()), header=["parameter", "value"])
    learned = []
    for name in ("smoothing_", "shrinkage_", "n_iter_"):
        if hasattr(model, name):
            learned.append((name, np.asarray(getattr(model, name)).tolist()))
    return f"<p>{html.escape(type(model).__name__)}</p>{params}" + (
        _table(learned, header=["learned", "value"]) if learned else ""
    )


def _learned(model, run_dir: Path, dataset: dict, x_train, y_train) -> str:
    """Weights as images and weight distributions (MLP), or what each classical model keeps."""
    from mnistlab.train.checkpoint import load_npz

    shape = tuple(dataset["image_shape"])
    names = dataset["class_names"]
    parts = []
    if hasattr(model, "model_"):  # MLP: first-layer weights, one tile per hidden unit
        dense = [layer for layer in model.model_.layers if hasattr(layer, "weight")]
        first = dense[0].weight.data.T
        parts.append(
            _img(
                plots.weight_images(
                    first, shape, max_tiles=32, title="first-layer weights, one tile per unit"
                ),
                "first-layer weights",
            )
        )
        now = {f"dense {i}": layer.weight.data for i, layer in enumerate(dense)}
        initial = None
        if (run_dir / "init_weights.npz").exists():
            arrays, _ = load_npz(run_dir / "init_weights.npz")
            index = [i for i, layer in enumerate(model.model_.layers) if hasattr(layer, "weight")]
            initial = {
                f"dense {n}": arrays[f"layer{i}.W"]
                for n, i in enumerate(index)
                if f"layer{i}.W" in arrays
            }
            if len(initial) != len(now):
                initial = None
        parts.append(_img(plots.weight_distributions(now, initial), "weight distributions"))
    elif hasattr(model, "coef_"):  # softmax / one-vs-all: one weight image per class
        parts.append(
            _img(
                plots.weight_images(
                    model.coef_, shape, titles=names, title="weights of each class"
                ),
                "class weights",
            )
        )
    elif hasattr(model, "means_"):  # Gaussian: the class means
        parts.append(
            _img(
                plots.weight_images(
                    model.means_ - model.means_.mean(axis=0),
                    shape,
                    titles=names,
                    title="class means minus the overall mean",
                ),
                "class means",
            )
        )
    else:  # k-NN keeps the training set: show its class means
        means = np.array([x_train[y_train == k].mean(axis=0) for k in range(len(names))])
        parts.append(
            _img(
                plots.weight_images(
                    means - means.mean(axis=0),
                    shape,
                    titles=names,
                    title="k-NN stores the training images; their "
                    "class means minus the overall mean",
                ),
                "training class means",
            )
        )
    return "\n".join(parts)


def _activations(model, x_test, y_test, names, layer: int | None = None) -> str:
    from mnistlab.reports.analysis import last_hidden_index, layer_activations, pca_2d

    sample = np.arange(min(3000, x_test.shape[0]))
    if hasattr(model, "model_"):
        count = len(model.model_.layers)
        if layer is not None and not -count <= layer < count:
            raise UsageError(
                f"--layer must be a layer index from 0 to {count - 1} (or -1 to -{count} from "
                f"the end), got {layer}"
            )
        index = last_hidden_index(model.model_) if layer is None else layer % count
        layer = model.model_.layers[index]
        values = layer_activations(model.model_, x_test[sample], index)
        what = f"layer {index} ({layer.kind}, {values.shape[1]} wide)"
    else:
        values = model.predict_proba(x_test[sample])
        what = "the predicted class probabilities"
    if values.shape[1] == 2:
        points, caption = values, f"{what}: its two units directly"
    else:
        points, ratio = pca_2d(values)
        caption = (
            f"{what}: first two principal components (computed from scratch), "
            f"{ratio.sum():.0%} of the variance"
        )
    fig = plots.activation_map(points, y_test[sample], names, title=caption)
    return f"<p>{html.escape(caption)}, first {sample.size} test images.</p>" + _img(
        fig, "activation map"
    )


def build_report(
    run_dir: str | os.PathLike,
    *,
    offline: bool | None = None,
    data=None,
    layer: int | None = None,
    figures: str | os.PathLike | None = None,
    figure_format: str = "png",
) -> Path:
    """Write run_dir/report.html from the run folder; returns its path.

    data: the run's PreparedData when the caller has it (otherwise the dataset is loaded again).
    layer: the MLP layer whose activations are mapped (default: the last hidden one).
    figures: also save every figure into this folder, as `figure_format` ("png" or "svg").
    """
    if figure_format not in ("png", "svg"):
        raise UsageError(f"figure format must be png or svg, got {figure_format!r}")
    if figures is not None:
        Path(figures).mkdir(parents=True, exist_ok=True)
        _FIGURE_SINK[:] = [(figures, figure_format)]
    try:
        return _build_report(Path(run_dir), offline, data, layer)
    finally:
        _FIGURE_SINK.clear()


def _build_report(run_dir: Path, offline, data, layer) -> Path:
    from mnistlab.experiments.runs import prepare_data
    from mnistlab.metrics import report_from_confusion
    from mnistlab.models import load_model

    config = _read_json(run_dir / "config.json")
    metrics = _read_json(run_dir / "metrics.json")
    dataset = _read_json(run_dir / "dataset.json")
    model = load_model(run_dir)
    if layer is not None and not hasattr(model, "model_"):
        raise UsageError(
            f"--layer picks a layer of an MLP; {run_dir} holds a {config.get('model')} model, "
            "whose map shows its class probabilities"
        )
    history = read_history(run_dir)
    data = data if data is not None else prepare_data(config, offline=offline)
    names = list(dataset["class_names"])
    proba = model.predict_proba(data.x_test)
    predicted = np.asarray(model.classes_)[proba.argmax(axis=1)].astype(np.int64)
    confidence = proba.max(axis=1)

    body = [
        f"<h1>mnistlab run: {html.escape(run_dir.name)}</h1>",
        "<nav>" + "".join(f'<a href="#{s}">{s}</a>' for s in SECTIONS) + "</nav>",
    ]
    body.append(
        _section(
            "configuration",
            "Configuration",
            _table(sorted(config.items()), header=["key", "value"]),
        )
    )
    body.append(_section("model", "Model", _model_summary(model)))
    if history:
        keys = [
            k
            for k in (
                "epoch",
                "loss",
                "accuracy",
                "val_loss",
                "val_accuracy",
                "learning_rate",
                "seconds",
            )
            if k in history[0]
        ]
        hist = _img(plots.learning_curves(history), "learning curves") + _table(
            [[r.get(k) for k in keys] for r in history], header=keys
        )
    else:
        hist = "<p>This model is fitted in one go; it has no per-epoch history.</p>"
    body.append(_section("history", "Training history", hist))
    key_metrics = [
        (k, metrics.get(k))
        for k in (
            "test_accuracy",
            "test_errors",
            "n_test",
            "test_loss",
            "test_top2_accuracy",
            "train_accuracy",
            "val_accuracy",
            "epochs_run",
            "stop_reason",
        )
    ]
    report_text = report_from_confusion(metrics["confusion_matrix"], names)
    body.append(
        _section(
            "metrics",
            "Metrics",
            _table(key_metrics, header=["metric", "value"])
            + f"<p>{metrics['test_errors']} errors out of {metrics['n_test']}.</p>"
            + f"<pre>{html.escape(report_text)}</pre>",
        )
    )
    matrix = np.asarray(metrics["confusion_matrix"])
    body.append(
        _section(
            "confusion",
            "Confusion matrix",
            _img(plots.confusion_heatmap(matrix, names), "confusion matrix")
            + _img(plots.per_class_accuracy(matrix, names), "per-class accuracy"),
        )
    )
    images = data.dataset.x_test
    body.append(
        _section(
            "mistakes",
            "Most confident mistakes",
            _img(
                plots.confident_mistakes(images, data.y_test, predicted, confidence, names),
                "confident mistakes",
            ),
        )
    )
    body.append(
        _section(
            "learned",
            "What the model learned",
            _learned(model, run_dir, dataset, data.x_train, data.y_train),
        )
    )
    body.append(
        _section(
            "activations",
            "Activation map",
            _activations(model, data.x_test, data.y_test, names, layer),
        )
    )
    ds = data.dataset
    body.append(
        _section(
            "data",
            "Data",
            f"<p>{html.escape(ds.name)} from {html.escape(ds.source)}: "
            f"{ds.n_train} training and {ds.n_test} test images of "
            f"{'x'.join(map(str, ds.image_shape))}.</p>"
            + _img(
                plots.example_grid(ds.x_train, ds.y_train, ds.class_names, per_class=8),
                "examples per class",
            )
            + _img(
                plots.class_distribution(
                    ds.class_counts("train"), ds.class_counts("test"), ds.class_names
                ),
                "class distribution",
            ),
        )
    )
    machine = metrics.get("machine", {})
    timing = [
        ("training seconds", metrics.get("train_seconds")),
        ("wall seconds", metrics.get("wall_seconds")),
        ("finished", metrics.get("finished")),
    ] + sorted(machine.items())
    body.append(_section("timing", "Timing and machine", _table(timing, header=["", ""])))
    page = _page(f"mnistlab: {run_dir.name}", "\n".join(body))
    path = run_dir / "report.html"
    write_text_atomic(path, page)
    return path


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def build_comparison(run_dirs: list[str | os.PathLike], out: str | os.PathLike) -> Path:
    """A table of the parameters that differ and the metrics, and overlaid curves, for runs."""
    run_dirs = [Path(r) for r in run_dirs]
    configs = [_read_json(r / "config.json") for r in run_dirs]
    metrics = [_read_json(r / "metrics.json") for r in run_dirs]
    keys = sorted({k for c in configs for k in c})
    differing = [k for k in keys if len({json.dumps(c.get(k)) for c in configs}) > 1]
    header = ["run", *differing, "test_accuracy", "test_errors", "test_loss", "train_seconds"]
    rows = [
        [
            r.name,
            *[c.get(k) for k in differing],
            m.get("test_accuracy"),
            m.get("test_errors"),
            m.get("test_loss"),
            m.get("train_seconds"),
        ]
        for r, c, m in zip(run_dirs, configs, metrics, strict=True)
    ]
    plt = plots._pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for run in run_dirs:
        history = read_history(run)
        if not history:
            continue
        key = "val_" if "val_loss" in history[0] else ""
        epochs = [h["epoch"] for h in history]
        ax_loss.plot(epochs, [h[f"{key}loss"] for h in history], label=run.name)
        ax_acc.plot(epochs, [h[f"{key}accuracy"] for h in history], label=run.name)
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{label} (validation where recorded)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    body = (
        "<h1>mnistlab: comparison of runs</h1>"
        + _section("runs", "Runs", _table(rows, header=header))
        + _section("curves", "Curves", _img(fig, "overlaid curves"))
    )
    out = Path(out)
    write_text_atomic(out, _page("mnistlab: comparison", body))
    return out
