"""The progress bar: nothing into a pipe, a text bar in a terminal, tqdm.auto's notebook
widget in a Jupyter kernel (the class choice is tested, not a real widget)."""

from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest
from tqdm import notebook as tqdm_notebook
from tqdm.std import tqdm as text_tqdm

from mnistlab.errors import UsageError
from mnistlab.nn.model import build_mlp
from mnistlab.optim.optimizers import get_optimizer
from mnistlab.train import ProgressBar, Trainer
from mnistlab.train.callbacks import NOTEBOOK, bar_class, in_notebook, progress_enabled


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def fake_ipython(monkeypatch, config: dict | None) -> None:
    """An imported IPython whose shell has `config` (None: no shell is running)."""
    shell = None if config is None else types.SimpleNamespace(config=config)
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", module)


def train_with(callback) -> None:
    model = build_mlp([8], 3).build(4, seed=0)
    trainer = Trainer(
        model, get_optimizer("sgd", model.parameters(), learning_rate=0.1), callbacks=[callback]
    )
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    trainer.fit(x, np.arange(64) % 3, epochs=2, batch_size=4)


def test_into_a_pipe_nothing_is_printed(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    bar = ProgressBar()  # the command line's setting: on where someone watches
    assert not bar.enabled
    train_with(bar)
    assert pipe.getvalue() == ""
    assert capsys.readouterr().out == ""


def test_in_a_terminal_a_bar_is_drawn(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = ProgressBar(update_every=4)
    assert bar.enabled
    train_with(bar)
    drawn = terminal.getvalue()
    assert "epoch 1/2" in drawn and "epoch 2/2" in drawn
    assert "0/16" in drawn and "step/s" in drawn  # (redrawn at most every 0.1 s)


def test_the_notebook_setting_is_quiet_in_a_terminal(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = ProgressBar(enabled=NOTEBOOK)
    assert not bar.enabled
    train_with(bar)
    assert terminal.getvalue() == ""


def test_a_jupyter_kernel_is_told_from_a_terminal_ipython(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not in_notebook()
    fake_ipython(monkeypatch, None)  # IPython imported, no shell running
    assert not in_notebook()
    fake_ipython(monkeypatch, {"TerminalIPythonApp": {}})
    assert not in_notebook()
    fake_ipython(monkeypatch, {"IPKernelApp": {"connection_file": "kernel.json"}})
    assert in_notebook()


def test_in_a_notebook_the_bar_is_on_and_tqdm_autos_notebook_class_is_chosen(monkeypatch):
    fake_ipython(monkeypatch, {"IPKernelApp": {}})
    pipe = io.StringIO()  # a kernel's stderr is no terminal
    assert progress_enabled(None, pipe) and progress_enabled(NOTEBOOK, pipe)
    assert ProgressBar(file=pipe).enabled and ProgressBar(enabled=NOTEBOOK, file=pipe).enabled
    assert not ProgressBar(enabled=False, file=pipe).enabled

    monkeypatch.setattr(tqdm_notebook, "IProgress", object)  # ipywidgets present
    assert bar_class() is tqdm_notebook.tqdm
    assert bar_class(notebook=False) is text_tqdm
    # without ipywidgets, the text bar (a notebook redraws its line in place), and no warning
    monkeypatch.setattr(tqdm_notebook, "IProgress", None)
    assert bar_class() is text_tqdm


def test_outside_a_notebook_the_text_bar_is_chosen(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(tqdm_notebook, "IProgress", object)
    assert bar_class() is text_tqdm


def test_true_and_false_are_obeyed_and_anything_else_refused():
    assert progress_enabled(True, io.StringIO()) and not progress_enabled(False, Terminal())
    with pytest.raises(
        UsageError, match="progress must be True, False, None or 'notebook', got progress='yes'"
    ):
        ProgressBar(enabled="yes")
