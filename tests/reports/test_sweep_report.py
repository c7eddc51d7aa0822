"""The sweep report: a style of its own for every trial, legends outside the plots, whole-epoch
ticks, "±" only over two seeds or more, marginal means that say what they average over, a
heatmap per pair of grid parameters and, for a random search, the metric against each draw."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.reports import sweep_plots
from mnistlab.reports.line_styles import grouped_styles
from mnistlab.reports.sweep_summaries import configurations, marginals, pair_means

GRID = """
[study]
name = "grid"
metric = "val_accuracy"
[base]
dataset = "digits"
preset = "seed000"
hidden = [16]
epochs = 3
validation = 300
[grid]
lr = [0.1, 0.03, 0.01]
batch_size = [32, 64]
[repeat]
seeds = [0, 1]
"""

RANDOM = """
[study]
name = "random"
metric = "val_accuracy"
[base]
dataset = "digits"
preset = "seed000"
hidden = [16]
epochs = 2
validation = 300
[random]
trials = 4
seed = 1
lr = { log_uniform = [0.001, 0.3] }
activation = ["relu", "tanh"]
"""


def sweep(tmp_path_factory, name: str, text: str) -> str:
    root = tmp_path_factory.mktemp(name)
    (root / "study.toml").write_text(text, encoding="utf-8")
    out = root / "out"
    main(["sweep", str(root / "study.toml"), "--workers", "2", "--out", str(out), "--quiet"])
    return (out / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def grid_page(tmp_path_factory):
    return sweep(tmp_path_factory, "grid", GRID)


@pytest.fixture(scope="module")
def random_page(tmp_path_factory):
    return sweep(tmp_path_factory, "random", RANDOM)


def section_of(page: str, key: str) -> str:
    match = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S)
    assert match, key
    return match.group(1)


def alts(fragment: str) -> list[str]:
    return re.findall(r'<img alt="([^"]*)"', fragment)


def history(epochs: int, shift: float = 0.0) -> list[dict]:
    return [
        {"epoch": e, "loss": 1 / e + shift, "accuracy": 0.5 + shift, "val_loss": 1.2 / e + shift,
         "val_accuracy": 0.4 + shift}
        for e in range(1, epochs + 1)
    ]  # fmt: skip


def trial(params: dict, value: float) -> dict:
    return {"status": "finished", "params": params, "metrics": {"val_accuracy": value}}


# ---------------------------------------------------------------------------- the figures


@pytest.mark.parametrize("seeds", [1, 2])
def test_twelve_trials_get_twelve_distinct_styles(seeds):
    groups = [f"config {i // seeds}" for i in range(12)]
    curves = [(f"trial {i}", group, history(3, i / 100)) for i, group in enumerate(groups)]
    fig = sweep_plots.trial_curves(curves, "val_")
    for ax in fig.axes:
        lines = ax.get_lines()
        styles = {
            (line.get_color(), str(line.get_linestyle()), line.get_marker()) for line in lines
        }
        assert len(lines) == len(styles) == 12
        if seeds == 2:  # the seeds of one configuration share its colour, not its dashes
            assert lines[0].get_color() == lines[1].get_color()
            assert lines[0].get_linestyle() != lines[1].get_linestyle()
    styles = grouped_styles([g // 3 for g in range(300)])  # 100 configurations of 3 seeds
    assert len(set(styles)) == 300


def test_curves_tick_whole_epochs_and_keep_the_legend_off_the_plots():
    fig = sweep_plots.trial_curves([("a", 0, history(3)), ("b", 1, history(3))], "val_")
    fig.canvas.draw()
    for ax in fig.axes:
        low, high = ax.get_xlim()
        assert [t for t in ax.get_xticks() if low <= t <= high] == [1, 2, 3]  # no 1.25 or 1.75
        assert ax.get_ylabel().startswith("validation")
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b"]
    assert legend.get_window_extent().x0 >= max(ax.get_window_extent().x1 for ax in fig.axes)


def test_marginal_chart_says_what_it_averages_over_and_draws_the_seeds_apart():
    rows = marginals(configurations(GRID_TRIALS, "val_accuracy", "max"), "lr", "val_accuracy")
    fig = sweep_plots.marginal_chart("lr", rows, "val_accuracy", ["batch_size"])
    (ax,) = fig.axes
    assert ax.get_title(loc="left") == (
        "val_accuracy by lr: marginal mean over the other varied parameters "
        "(2 configurations per value)"
    )
    # one set of points per seed, one of the marginal means; no error bar
    labels = [c.get_label() for c in ax.collections]
    assert labels == ["seed 0", "seed 1", "marginal mean"] and not ax.containers
    assert "seeds' spread" in ax.get_xlabel()
    # the value labels stand right of the plot area, clear of every point
    values = [t for t in ax.texts if t.get_text().startswith("0.")]
    assert len(values) == 2 and all(t.get_position()[0] > 1 for t in values)
    one_seed = [
        trial({**t["params"], "seed": 0}, t["metrics"]["val_accuracy"]) for t in GRID_TRIALS[::2]
    ]
    rows = marginals(configurations(one_seed, "val_accuracy", "max"), "lr", "val_accuracy")
    (ax,) = sweep_plots.marginal_chart("lr", rows, "val_accuracy", ["batch_size"]).axes
    assert [c.get_label() for c in ax.collections] == ["marginal mean"]
    assert "1 seed: no spread over seeds" in ax.get_xlabel()


# lr and batch_size on a 2x2 grid, two seeds each: (lr, batch_size, seed) -> val_accuracy
GRID_VALUES = {
    (0.1, 32, 0): 0.90, (0.1, 32, 1): 0.92, (0.1, 64, 0): 0.80, (0.1, 64, 1): 0.84,
    (0.01, 32, 0): 0.60, (0.01, 32, 1): 0.70, (0.01, 64, 0): 0.50, (0.01, 64, 1): 0.52,
}  # fmt: skip
GRID_TRIALS = [
    trial({"lr": lr, "batch_size": batch, "seed": seed}, value)
    for (lr, batch, seed), value in GRID_VALUES.items()
]


def test_marginal_means_average_configurations_and_keep_each_seed_apart():
    configs = configurations(GRID_TRIALS, "val_accuracy", "max")
    (high, low) = marginals(configs, "lr", "val_accuracy", order=[0.1, 0.01])
    assert high.label == "0.1" and high.configurations == 2
    # (0.91 + 0.82) / 2: the mean of the two configurations' means over seeds
    assert high.mean == pytest.approx(0.865)
    # seed 0 alone: (0.90 + 0.80) / 2; seed 1 alone: (0.92 + 0.84) / 2
    assert high.per_seed == pytest.approx({0: 0.85, 1: 0.88})
    assert low.mean == pytest.approx((0.65 + 0.51) / 2)
    means, counts = pair_means(configs, ("lr", "batch_size"), ([0.1, 0.01], [32, 64]))
    np.testing.assert_allclose(means, [[0.91, 0.82], [0.65, 0.51]])
    assert counts.tolist() == [[1, 1], [1, 1]]


def test_heatmap_annotates_every_cell_and_outlines_the_best():
    means = np.array([[0.91, 0.82], [0.65, np.nan]])
    counts = np.array([[1, 1], [1, 0]])
    fig = sweep_plots.pair_heatmap(
        ("lr", "batch_size"), [["0.1", "0.01"], ["32", "64"]], means, counts, "val_accuracy", "max"
    )
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["0.6500", "0.8200", "0.9100", "—"]
    (outline,) = ax.patches
    assert outline.get_xy() == (-0.5, -0.5)  # the top-left cell, lr=0.1 and batch 32


def test_scatter_has_a_log_axis_for_a_log_uniform_draw():
    panels = [
        {"key": "lr", "values": [0.001, 0.01, 0.2], "metric": [0.2, 0.5, 0.9],
         "seeds": [None] * 3, "log": True, "best": 2},
        {"key": "activation", "values": ["relu", "tanh", "relu"], "metric": [0.2, 0.5, 0.9],
         "seeds": [None] * 3, "log": False, "best": 2},
    ]  # fmt: skip
    fig = sweep_plots.parameter_scatter(panels, "val_accuracy")
    lr, activation = fig.axes[:2]
    assert lr.get_xscale() == "log" and activation.get_xscale() == "linear"
    assert [t.get_text() for t in activation.get_xticklabels()] == ["relu", "tanh"]
    assert fig.legends and fig.legends[0].get_window_extent().x0 >= lr.get_window_extent().x1


# ---------------------------------------------------------------------------- the pages


def test_grid_report_has_a_heatmap_and_the_spread_over_two_seeds(grid_page):
    assert "val_accuracy by lr and batch_size" in alts(section_of(grid_page, "pairs"))
    assert alts(section_of(grid_page, "parameters")) == [
        "val_accuracy by lr",
        "val_accuracy by batch_size",
    ]
    assert 'id="draws"' not in grid_page  # a grid has no random draws
    ranking = section_of(grid_page, "ranking")
    assert "(mean ± std over seeds)" in ranking and ranking.count(" ± ") == 7  # header, 6 rows
    assert ranking.count("2 seeds") == 6 and "1 seed<" not in ranking
    assert alts(section_of(grid_page, "curves")) == ["curves of all trials"]
    assert "one line style per seed" in section_of(grid_page, "curves")


def test_random_report_has_the_scatter_and_no_spread_over_one_seed(random_page):
    assert alts(section_of(random_page, "draws")) == ["val_accuracy against each drawn parameter"]
    assert 'id="pairs"' not in random_page
    assert "±" not in random_page  # one seed: the bare value
    ranking = section_of(random_page, "ranking")
    assert ranking.count("1 seed") == 4
    assert re.search(r"val_accuracy \d\.\d{4} \(1 seed\)", section_of(random_page, "best"))
