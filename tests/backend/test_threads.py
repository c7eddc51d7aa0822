"""BLAS threads: the library that runs the products at the chosen count, every other at one; the
library the trainer's setting picks (SciPy's when the optimizer steps inside the GEMMs on more
than one thread); the inference setting; the automatic thread count."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg.blas  # noqa: F401  (loads SciPy's BLAS, if it has its own)
from threadpoolctl import threadpool_info

from mnistlab.backend import blas as _blas
from mnistlab.backend.blas import Blas, available_threads, blas_paths, blas_threads
from mnistlab.nn import build_mlp
from mnistlab.optim import get_optimizer
from mnistlab.train import Callback, Trainer
from mnistlab.train.trainer import WORK_PER_THREAD, auto_blas_threads


def _threads() -> dict[str, int]:
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


@pytest.mark.parametrize("library", ["numpy", "scipy"])
def test_each_library_is_found_among_the_loaded_libraries(library):
    paths = blas_paths(library)
    assert paths and set(paths) <= set(_threads())


@pytest.mark.parametrize("library", ["numpy", "scipy"])
def test_blas_threads_sets_the_library_and_every_other_to_one(library):
    before = _threads()
    ours = set(blas_paths(library))
    with blas_threads(2, library):
        for path, threads in _threads().items():
            assert threads == (2 if path in ours else 1), path
    assert _threads() == before  # restored on exit


def test_a_setting_sets_the_pools_and_its_objects_library_and_nests():
    blas = Blas()
    assert (blas.library, blas.threads) == (None, 1)  # outside: each pool as it was
    with blas.use(1, "numpy"):
        assert (blas.library, blas.threads) == ("numpy", 1)
        with blas.use(2, "scipy"):
            assert (blas.library, blas.threads) == ("scipy", 2)
        assert (blas.library, blas.threads) == ("numpy", 1)
        assert all(t == 1 for t in _threads().values())
    assert blas.library is None


@pytest.mark.parametrize(
    "threads, scaled_gemms, library",
    [(1, False, "numpy"), (2, False, "numpy"), (1, True, "numpy"), (2, True, "scipy")],
)
def test_the_training_setting_sends_everything_to_scipy_only_for_scaled_gemms_on_threads(
    threads, scaled_gemms, library
):
    blas = Blas()
    with blas.training(threads, scaled_gemms=scaled_gemms):
        assert (blas.library, blas.threads) == (library, threads)


def test_inference_runs_in_scipys_blas_with_the_threads_the_products_have():
    from threadpoolctl import threadpool_limits

    scipys = set(blas_paths("scipy"))
    cores = available_threads()
    blas = Blas()
    with blas.inference():  # outside any setting: what the BLAS may use
        assert (blas.library, blas.threads) == ("scipy", cores)
        assert all(t == (cores if p in scipys else 1) for p, t in _threads().items())
    with blas.use(1, "numpy"), blas.inference():  # inside a one-thread step: one
        assert (blas.library, blas.threads) == ("scipy", 1)
    with threadpool_limits(1), blas.inference():  # a sweep's trial: one
        assert blas.threads == 1
    assert blas.library is None


def test_predict_and_evaluate_run_under_the_inference_setting(monkeypatch):
    entered = []
    real = Blas.inference

    def spy(self):
        entered.append(True)
        return real(self)

    monkeypatch.setattr(Blas, "inference", spy)
    rng = np.random.default_rng(0)
    x = rng.random((40, 20), dtype=np.float32)
    y = rng.integers(0, 3, 40)
    model = build_mlp([8], 3).build(20, seed=0)
    seen = []
    forward = model.forward
    model.forward = lambda *a, **k: seen.append(model.blas.library) or forward(*a, **k)
    model.predict_logits(x)
    Trainer(model, get_optimizer("sgd", model.parameters())).evaluate(x, y)
    assert entered == [True, True]
    assert seen == ["scipy", "scipy"]


def test_blas_threads_refuses_an_unknown_library():
    with pytest.raises(ValueError, match="'mkl'"):
        with blas_threads(1, "mkl"):
            pass


def test_auto_blas_threads_follows_the_work_of_a_step():
    assert auto_blas_threads(32, 100_400, cores=2) == 1  # 784-100-200-10: small GEMMs
    assert auto_blas_threads(64, 100_400, cores=2) == 1
    assert auto_blas_threads(128, 100_400, cores=2) == 2
    assert auto_blas_threads(32, 1_332_224, cores=2) == 2  # 784-1024-512-10
    assert auto_blas_threads(128, 1_332_224, cores=16) == 16
    assert auto_blas_threads(128, 100_400, cores=16) == 2
    assert auto_blas_threads(1, 10, cores=8) == 1
    assert auto_blas_threads(WORK_PER_THREAD, 4, cores=1) == 1  # never more than the cores


@pytest.mark.parametrize(
    "optimizer, threads, library",
    [("adam", 2, "numpy"), ("nesterov", 2, "numpy"), ("sgd", 2, "scipy"), ("sgd", 1, "numpy")],
)
def test_trainer_runs_under_the_chosen_library_and_threads_and_restores_them(
    optimizer, threads, library
):
    rng = np.random.default_rng(0)
    x = rng.random((64, 20), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    model = build_mlp([8], 3).build(20, seed=0)
    seen = []

    class Spy(Callback):
        def on_train_begin(self, trainer):
            seen.append((_threads(), trainer.model.blas.library))

    before = _threads()
    trainer = Trainer(
        model, get_optimizer(optimizer, model.parameters()), callbacks=[Spy()], blas_threads=threads
    )
    trainer.fit(x, y, epochs=1, batch_size=16)
    inside, active = seen[0]
    ours = set(blas_paths(library))
    assert active == library
    assert all(t == (threads if p in ours else 1) for p, t in inside.items())
    assert _threads() == before
    assert model.blas.library is None


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


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_an_enclosing_limit_caps_the_automatic_threads(optimizer):
    # a sweep runs a trial per core under threadpool_limits(1): its trainers must keep to one
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    x = rng.random((512, 784), dtype=np.float32)
    y = rng.integers(0, 10, 512)
    model = build_mlp([1024, 512], 10).build(784, seed=0)  # 2 threads wherever 2 cores are free
    seen = []

    class Spy(Callback):
        def on_train_begin(self, trainer):
            seen.append(_threads())

    with threadpool_limits(1):
        assert available_threads("numpy") == available_threads("scipy") == available_threads() == 1
        trainer = Trainer(model, get_optimizer(optimizer, model.parameters()), callbacks=[Spy()])
        trainer.fit(x, y, epochs=1, batch_size=256)
    assert set(seen[0].values()) == {1}


def test_each_librarys_blas_is_its_wheels_or_else_not_the_others(monkeypatch):
    # both wheels bundle their own; one package on the system's OpenBLAS beside the other's
    # wheel; one system OpenBLAS shared by both
    from pathlib import Path

    import scipy

    system = "/usr/lib/x86_64-linux-gnu/libopenblas.so.0"
    scipys = str(Path(scipy.__file__).resolve().parent.parent / "scipy.libs" / "libopenblas.so")
    numpys = str(Path(np.__file__).resolve().parent.parent / "numpy.libs" / "libopenblas64_.so")
    cases = (
        ([numpys, scipys], (numpys,), (scipys,)),
        ([numpys, system], (numpys,), (system,)),
        ([system, scipys], (system,), (scipys,)),
        ([system], (system,), (system,)),
    )
    for loaded, numpy_expected, scipy_expected in cases:
        infos = [{"user_api": "blas", "filepath": p, "num_threads": 2} for p in loaded]
        monkeypatch.setattr(_blas, "threadpool_info", lambda infos=infos: infos)
        _blas.blas_paths.cache_clear()
        try:
            assert _blas.blas_paths("numpy") == numpy_expected
            assert _blas.blas_paths("scipy") == scipy_expected
        finally:
            _blas.blas_paths.cache_clear()
