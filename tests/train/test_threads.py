"""BLAS threads: NumPy's pool at the chosen count, SciPy's at one, and the automatic choice."""

from __future__ import annotations

import numpy as np
import scipy.linalg.blas  # noqa: F401  (loads SciPy's BLAS, if it has its own)
from threadpoolctl import threadpool_info

from mnistlab._blas import blas_threads, numpy_blas_paths
from mnistlab.nn import build_mlp
from mnistlab.optim import get_optimizer
from mnistlab.train import Callback, Trainer
from mnistlab.train.trainer import WORK_PER_THREAD, auto_blas_threads


def _threads() -> dict[str, int]:
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_numpy_blas_is_found_among_the_loaded_libraries():
    paths = numpy_blas_paths()
    assert paths and set(paths) <= set(_threads())


def test_blas_threads_sets_numpys_pool_and_every_other_to_one():
    before = _threads()
    ours = set(numpy_blas_paths())
    with blas_threads(2):
        inside = _threads()
        for path, threads in inside.items():
            assert threads == (2 if path in ours else 1), path
    assert _threads() == before  # restored on exit


def test_auto_blas_threads_follows_the_work_of_a_step():
    assert auto_blas_threads(32, 100_400, cores=2) == 1  # 784-100-200-10: small GEMMs
    assert auto_blas_threads(64, 100_400, cores=2) == 1
    assert auto_blas_threads(128, 100_400, cores=2) == 2
    assert auto_blas_threads(32, 1_332_224, cores=2) == 2  # 784-1024-512-10
    assert auto_blas_threads(128, 1_332_224, cores=16) == 16
    assert auto_blas_threads(128, 100_400, cores=16) == 2
    assert auto_blas_threads(1, 10, cores=8) == 1
    assert auto_blas_threads(WORK_PER_THREAD, 4, cores=1) == 1  # never more than the cores


def test_trainer_runs_under_the_chosen_threads_and_restores_them():
    rng = np.random.default_rng(0)
    x = rng.random((64, 20), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    model = build_mlp([8], 3).build(20, seed=0)
    seen = []

    class Spy(Callback):
        def on_train_begin(self, trainer):
            seen.append(_threads())

    before = _threads()
    optimizer = get_optimizer("adam", model.parameters())
    trainer = Trainer(model, optimizer, callbacks=[Spy()], blas_threads=2)
    trainer.fit(x, y, epochs=1, batch_size=16)
    ours = set(numpy_blas_paths())
    assert all(t == (2 if p in ours else 1) for p, t in seen[0].items())
    assert _threads() == before


def test_the_helper_thread_gathers_only_while_the_blas_leaves_a_core_free():
    import os

    rng = np.random.default_rng(0)
    x = rng.random((64, 20), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    cores = os.cpu_count() or 1
    for threads, background in ((1, cores > 1), (cores, False)):
        model = build_mlp([8], 3).build(20, seed=0)
        trainer = Trainer(model, get_optimizer("sgd", model.parameters()), blas_threads=threads)
        trainer.fit(x, y, epochs=1, batch_size=16)
        assert trainer._gather_in_background is background


def test_an_enclosing_limit_caps_the_automatic_threads():
    # a sweep runs a trial per core under threadpool_limits(1): its trainers must keep to one
    from threadpoolctl import threadpool_limits

    from mnistlab._blas import numpy_blas_threads

    rng = np.random.default_rng(0)
    x = rng.random((512, 784), dtype=np.float32)
    y = rng.integers(0, 10, 512)
    model = build_mlp([1024, 512], 10).build(784, seed=0)  # 2 threads wherever 2 cores are free
    seen = []

    class Spy(Callback):
        def on_train_begin(self, trainer):
            seen.append(_threads())

    with threadpool_limits(1):
        assert numpy_blas_threads() == 1
        trainer = Trainer(model, get_optimizer("sgd", model.parameters()), callbacks=[Spy()])
        trainer.fit(x, y, epochs=1, batch_size=256)
    assert set(seen[0].values()) == {1}


def test_numpy_blas_outside_its_wheel_is_told_from_scipys(monkeypatch):
    # a NumPy built against the system's OpenBLAS, a SciPy wheel with its own
    from pathlib import Path

    import scipy

    from mnistlab import _blas

    system = "/usr/lib/x86_64-linux-gnu/libopenblas.so.0"
    scipys = str(Path(scipy.__file__).resolve().parent.parent / "scipy.libs" / "libopenblas.so")
    for loaded, expected in (([system, scipys], (system,)), ([system], (system,))):
        infos = [{"user_api": "blas", "filepath": p, "num_threads": 2} for p in loaded]
        monkeypatch.setattr(_blas, "threadpool_info", lambda infos=infos: infos)
        _blas.numpy_blas_paths.cache_clear()
        try:
            assert _blas.numpy_blas_paths() == expected
        finally:
            _blas.numpy_blas_paths.cache_clear()
