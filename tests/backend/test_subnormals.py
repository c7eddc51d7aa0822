"""Subnormal floats computed as zero while training and predicting, and only then."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mnistlab.backend import fpu as _fpu
from mnistlab.backend.fpu import flush_subnormals
from mnistlab.nn import build_mlp
from mnistlab.optim import get_optimizer
from mnistlab.train import Callback, Trainer

needs_fpu = pytest.mark.skipif(not _fpu.supported(), reason="x86-64 Linux with glibc only")

SUBNORMAL = np.float32(1e-40)


def _flushes() -> bool:
    """Whether this thread now computes subnormals as zero: a subnormal input (DAZ) and a
    result that would be subnormal (FTZ)."""
    inputs = np.array([SUBNORMAL], dtype=np.float32) * np.float32(1.0)
    results = np.array([1e-30], dtype=np.float32) * np.float32(1e-10)
    assert (inputs[0] == 0) == (results[0] == 0)
    return bool(inputs[0] == 0)


@needs_fpu
def test_flush_subnormals_inside_the_block_and_not_after():
    assert not _flushes()
    with flush_subnormals():
        assert _flushes()
        with flush_subnormals():  # nested: the outer block's setting survives the inner one
            assert _flushes()
        assert _flushes()
        # numbers from the smallest normal float up are untouched
        tiny = np.finfo(np.float32).tiny
        assert np.array([tiny], dtype=np.float32)[0] * np.float32(1.0) == tiny
    assert not _flushes()


@needs_fpu
def test_flush_subnormals_restores_after_an_exception():
    with pytest.raises(RuntimeError), flush_subnormals():
        assert _flushes()
        raise RuntimeError("in the block")
    assert not _flushes()


@needs_fpu
def test_flush_subnormals_touches_the_calling_thread_only():
    """A thread that was running before the block keeps IEEE arithmetic (one started inside it
    inherits the setting, as a new thread inherits its creator's floating-point environment)."""
    seen, go = [], threading.Event()

    def other_thread():
        go.wait()
        seen.append(_flushes())

    other = threading.Thread(target=other_thread)
    other.start()
    with flush_subnormals():
        go.set()
        other.join()
        assert _flushes()
    assert seen == [False]


def test_flush_subnormals_does_nothing_where_unsupported(monkeypatch):
    monkeypatch.setattr(_fpu, "_libm", lambda: None)
    before = _flushes()
    with flush_subnormals():
        assert _flushes() == before
    assert not _fpu.supported()


class _Probe(Callback):
    def __init__(self):
        self.seen = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.seen.append(_flushes())


@needs_fpu
def test_training_evaluating_and_predicting_flush_and_leave_the_caller_as_it_was():
    rng = np.random.default_rng(0)
    x = rng.random((64, 6), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    model = build_mlp([5], 3).build(6, seed=0)
    probe = _Probe()
    trainer = Trainer(model, get_optimizer("adam", model.parameters()), callbacks=[probe])
    trainer.fit(x, y, epochs=2, batch_size=16)
    assert probe.seen == [True, True]
    assert not _flushes()

    calls = []
    forward = model.forward

    def recording(*args, **kwargs):
        calls.append(_flushes())
        return forward(*args, **kwargs)

    model.forward = recording
    trainer.evaluate(x, y)
    model.predict_logits(x)
    assert calls and all(calls)
    assert not _flushes()


@needs_fpu
def test_a_subnormal_in_a_weight_is_read_as_zero_when_predicting():
    model = build_mlp([], 2).build(2, seed=0)
    (dense,) = model.layers
    dense.weight.data[...] = [[SUBNORMAL, 1.0], [0.0, 1.0]]
    dense.bias.data[...] = 0.0
    x = np.array([[1.0, 0.0]], dtype=np.float32)
    assert model.predict_logits(x)[0, 0] == 0.0
    assert model.forward(x)[0, 0] == SUBNORMAL  # outside: IEEE arithmetic, as NumPy does
