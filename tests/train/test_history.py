"""History as a table: columns, to_dict, to_csv (text and file), to_pandas, reprs."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from mnistlab.nn.model import build_mlp
from mnistlab.optim.optimizers import get_optimizer
from mnistlab.train import History, Trainer

RECORDS = [
    {"epoch": 1, "loss": 0.9, "accuracy": 0.6, "val_loss": 1.0, "val_accuracy": 0.55,
     "learning_rate": 0.001, "seconds": 0.25},
    {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.7, "val_accuracy": 0.75,
     "learning_rate": 0.001, "seconds": 0.2},
]  # fmt: skip


def test_columns_in_the_trainers_order_then_extras():
    history = History([{"seconds": 1.0, "loss": 0.5, "epoch": 1, "mine": 3, "accuracy": 0.5}])
    assert history.columns == ["epoch", "loss", "accuracy", "seconds", "mine"]
    assert History().columns == []


def test_to_dict_and_item_access():
    history = History([dict(r) for r in RECORDS])
    table = history.to_dict()
    assert list(table) == list(RECORDS[0])
    assert table["loss"] == [0.9, 0.5] and table["epoch"] == [1, 2]
    assert history["val_accuracy"] == [0.55, 0.75]
    assert history[-1] == RECORDS[-1] and history[0]["epoch"] == 1
    assert [r["epoch"] for r in history] == [1, 2] and len(history) == 2


def test_a_missing_value_is_none_and_an_unknown_column_is_named():
    history = History([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4, "val_loss": 0.6}])
    assert history["val_loss"] == [None, 0.6]
    with pytest.raises(
        KeyError, match="no column 'val_acc' in this history; its columns are epoch, loss, val_loss"
    ):
        history["val_acc"]


def test_to_csv_text_is_the_run_folder_format(tmp_path):
    history = History([dict(r) for r in RECORDS] + [{"epoch": 3, "loss": 1 / 3, "accuracy": 0.9}])
    text = history.to_csv()
    assert text == (
        "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n"
        "1,0.9,0.6,1,0.55,0.001,0.25\n"
        "2,0.5,0.8,0.7,0.75,0.001,0.2\n"
        "3,0.333333,0.9,,,,\n"
    )
    path = history.to_csv(tmp_path / "history.csv")
    assert path == tmp_path / "history.csv" and path.read_text(encoding="utf-8") == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]  # no temporary left


def test_the_trainers_history_and_its_csv_after_a_fit(tmp_path):
    model = build_mlp([8], 3).build(4, seed=0)
    trainer = Trainer(model, get_optimizer("sgd", model.parameters(), learning_rate=0.1))
    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    y = np.arange(60) % 3
    history = trainer.fit(x, y, validation=(x, y), epochs=2, batch_size=20)
    assert history.columns == list(RECORDS[0])
    header, *rows = history.to_csv().splitlines()
    assert header == "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds"
    assert [row.split(",")[0] for row in rows] == ["1", "2"]


def test_to_pandas_without_pandas_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(
        ImportError,
        match=r"History.to_pandas\(\) needs pandas, which is not "
        r"installed; install it \(pip install pandas\) or use history.to_dict",
    ):
        History([dict(r) for r in RECORDS]).to_pandas()


def test_to_pandas_hands_pandas_the_columns(monkeypatch):
    """The DataFrame is built from to_dict() with the columns in order (a stand-in pandas:
    the real one is checked below where it is installed)."""
    calls = []
    fake = types.ModuleType("pandas")
    fake.DataFrame = lambda data, columns: calls.append((data, columns)) or "frame"
    monkeypatch.setitem(sys.modules, "pandas", fake)
    history = History([dict(r) for r in RECORDS])
    assert history.to_pandas() == "frame"
    assert calls == [(history.to_dict(), history.columns)]


def test_to_pandas_with_pandas():
    pandas = pytest.importorskip("pandas")
    frame = History([dict(r) for r in RECORDS]).to_pandas()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == list(RECORDS[0]) and frame.shape == (2, 7)
    assert frame["loss"].tolist() == [0.9, 0.5]


def test_reprs_are_tables():
    history = History([dict(r) for r in RECORDS])
    lines = repr(history).splitlines()
    assert lines[0] == "History: 2 epochs"
    assert lines[1].split() == list(RECORDS[0])
    assert lines[2].split() == ["1", "0.9", "0.6", "1", "0.55", "0.001", "0.25"]
    page = history._repr_html_()
    assert page.startswith("<table><caption>History: 2 epochs</caption>")
    assert page.count("<tr>") == 3 and "<th>val_accuracy</th>" in page
    assert repr(History()) == "History: 0 epochs"


def test_a_long_history_shows_its_first_and_last_rows():
    history = History([{"epoch": i, "loss": 1.0 / i} for i in range(1, 101)])
    lines = repr(history).splitlines()
    assert len(lines) == 2 + 20 + 1
    assert lines[12].split() == ["...", "..."] and lines[-1].split()[0] == "100"
    assert history._repr_html_().count("<tr>") == 1 + 21
