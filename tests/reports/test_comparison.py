"""The comparison of runs: runs as columns, metrics first, only the settings whose effective
values differ, bars of the main metrics, every run's curves or a line saying it has none."""

from __future__ import annotations

import html
import re

import pytest

from mnistlab.cli import main
from mnistlab.reports import comparison_plots
from mnistlab.reports.comparison import build_comparison
from mnistlab.reports.effective_config import NOT_APPLICABLE, effective_config, same_value

RUNS = {
    # beta1 left blank: Adam applies 0.9
    "mlp-a": ["--hidden", "16", "--epochs", "3", "--validation", "300"],
    # beta1 set to what Adam applies anyway; lr really differs
    "mlp-b": ["--hidden", "16", "--epochs", "3", "--validation", "300", "--beta1", "0.9",
              "--lr", "0.01"],
    "knn": ["--model", "knn", "--k", "3"],
}  # fmt: skip


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    for name, options in RUNS.items():
        arguments = ["train", "--dataset", "digits", "--quiet", "--out", str(root / name)]
        assert main([*arguments, *options]) == 0
    out = build_comparison([root / name for name in RUNS], root / "compare.html")
    return out.read_text(encoding="utf-8")


def section_of(page: str, key: str) -> str:
    match = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S)
    assert match, key
    return match.group(1)


def rows_of(fragment: str) -> list[list[str]]:
    """The text of each cell of each row of the first table in `fragment`."""
    table = re.search(r"<table.*?</table>", fragment, re.S).group(0)
    cells = r"<t[hd][^>]*>(.*?)</t[hd]>"
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(cells, row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]


def test_runs_are_columns_and_the_metrics_come_first(compared):
    assert compared.index('id="metrics"') < compared.index('id="settings"')
    rows = rows_of(section_of(compared, "metrics"))
    assert rows[0] == ["metric", *RUNS]
    assert [r[0] for r in rows][1:4] == ["test_accuracy", "test_errors", "test_loss"]
    assert "train_seconds" in [r[0] for r in rows]
    errors = next(r for r in rows if r[0] == "test_errors")
    assert all(cell.endswith(" of 359") for cell in errors[1:])
    # the k-NN holds out nothing: no validation accuracy in its column
    val = next(r for r in rows if r[0] == "val_accuracy")
    assert val[3] == NOT_APPLICABLE and val[1].endswith("%")


def test_only_settings_whose_effective_values_differ(compared):
    settings = section_of(compared, "settings")
    rows = {r[0]: r[1:] for r in rows_of(settings)}
    assert rows["setting"] == list(RUNS)
    assert rows["lr"] == ["0.001", "0.01", NOT_APPLICABLE]
    assert rows["model"] == ["mlp", "mlp", "knn"]
    assert rows["hidden"] == ["[16]", "[16]", NOT_APPLICABLE]  # differs only by the k-NN's —
    assert rows["k"] == [NOT_APPLICABLE, NOT_APPLICABLE, "3"]
    # blank in one run, 0.9 in the other: Adam applied 0.9 to both, but the k-NN has none
    assert rows["beta1"] == ["0.9", "0.9", NOT_APPLICABLE]
    assert "dataset" not in rows and "seed" not in rows  # alike in every run: folded away
    alike = settings.split("<details>")[1]
    assert ">dataset<" in alike and ">seed<" in alike


def test_two_runs_alike_but_for_a_blank_setting_show_no_difference(tmp_path):
    for name, extra in (("blank", []), ("set", ["--beta1", "0.9", "--beta2", "0.999"])):
        options = ["--hidden", "8", "--epochs", "1", "--quiet", "--out", str(tmp_path / name)]
        assert main(["train", "--dataset", "digits", *options, *extra]) == 0
    page = build_comparison([tmp_path / "blank", tmp_path / "set"], tmp_path / "c.html")
    settings = section_of(page.read_text(encoding="utf-8"), "settings")
    assert "<table" not in settings.split("<details>")[0]
    assert "Every setting has the same effective value" in settings


def test_bars_and_curves_for_every_run_that_has_them(compared):
    assert 'alt="test accuracy and training time per run"' in section_of(compared, "bars")
    curves = section_of(compared, "curves")
    assert 'alt="training and validation curves per run"' in curves
    line = re.search(r'<p id="no-curves">(.*?)</p>', curves, re.S).group(1)
    assert "knn (knn: fitted in one pass" in html.unescape(line)
    assert "mlp-a" not in line and "mlp-b" not in line


def test_every_table_fits_the_page(compared):
    tables = re.findall(r"<table[^>]*>", compared)
    assert tables and all('style="max-width:100%"' in t for t in tables)
    assert "overflow-wrap:anywhere" in compared


@pytest.mark.parametrize(
    "a, b, equal",
    [
        ({"optimizer": "adam", "beta1": None}, {"optimizer": "adam", "beta1": 0.9}, True),
        (
            {"optimizer": "adamw", "weight_decay": None},
            {"optimizer": "adamw", "weight_decay": 0.01},
            True,
        ),
        (
            {"optimizer": "momentum", "momentum": None},
            {"optimizer": "momentum", "momentum": 0.9},
            True,
        ),
        (
            {"optimizer": "sgd", "momentum": None},
            {"optimizer": "momentum", "momentum": None},
            False,
        ),
        ({"init": None}, {"init": "he_normal"}, False),  # the output layer's Glorot differs
        ({"validation": 0}, {"validation": None}, True),
    ],
)
def test_effective_values(a, b, equal):
    base = {"model": "mlp", "hidden": [8], "activation": "relu", "optimizer": "adam"}
    first, second = effective_config({**base, **a}), effective_config({**base, **b})
    assert all(same_value(first[k], second[k]) for k in first) == equal


def test_settings_that_do_not_apply_are_marked():
    mlp = effective_config({"model": "mlp", "optimizer": "adam", "activation": "relu"})
    assert mlp["momentum"] == mlp["rho"] == mlp["k"] == mlp["leaky_slope"] == NOT_APPLICABLE
    assert mlp["init"] == "he_normal (output layer glorot_uniform)"
    knn = effective_config({"model": "knn", "k": 3})
    assert knn["hidden"] == knn["lr"] == NOT_APPLICABLE and knn["k"] == 3


def test_curves_train_solid_validation_dashed_one_colour_per_run():
    history = [
        {"epoch": e, "loss": 1 / e, "accuracy": 0.5, "val_loss": 1.1 / e, "val_accuracy": 0.4}
        for e in (1, 2, 3)
    ]
    fig = comparison_plots.overlaid_curves(
        [("a", (1, 0, 0, 1), history), ("b", (0, 0, 1, 1), history[:1])]
    )
    ax_loss, _ = fig.axes
    styles = [(line.get_color(), line.get_linestyle()) for line in ax_loss.get_lines()]
    assert styles == [
        ((1, 0, 0, 1), "-"),
        ((1, 0, 0, 1), "--"),
        ((0, 0, 1, 1), "-"),
        ((0, 0, 1, 1), "--"),
    ]
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in ax_loss.get_xticks())
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b", "training", "validation"]
    # the legend stands below the plots, covering none of them
    assert legend.get_window_extent().y1 <= min(ax.get_window_extent().y0 for ax in fig.axes)
