"""The products a model's layers compute through its BLAS setting (mnistlab.backend.blas.Blas):
gemm with alpha and beta, every operand layout, in place, through either library; add_rows."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.backend.blas import Blas


@pytest.fixture(params=["numpy", "scipy"])
def blas(request):
    """Plain products through np.matmul, or (as while SGD steps inside the GEMMs on several
    threads) SciPy's BLAS."""
    with Blas().use(1, request.param) as setting:
        yield setting


def _layouts(m: np.ndarray) -> dict[str, np.ndarray]:
    """m as a C-contiguous array, as the transpose of one, and as a strided view."""
    wide = np.zeros((m.shape[0], 2 * m.shape[1]), dtype=m.dtype)
    wide[:, ::2] = m
    return {"C": np.ascontiguousarray(m), "F": np.asfortranarray(m), "strided": wide[:, ::2]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_layout", ["C", "F", "strided"])
@pytest.mark.parametrize("b_layout", ["C", "F", "strided"])
def test_gemm_equals_matmul_for_every_layout(blas, dtype, a_layout, b_layout):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 7)).astype(dtype)
    b = rng.standard_normal((7, 3)).astype(dtype)
    out = np.full((5, 3), np.nan, dtype=dtype)  # beta = 0 must not read it
    result = blas.gemm(_layouts(a)[a_layout], _layouts(b)[b_layout], out)
    assert result is out
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_alpha_and_beta_accumulate_in_place(blas, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 6)).astype(dtype)
    g = rng.standard_normal((8, 4)).astype(dtype)
    w = rng.standard_normal((6, 4)).astype(dtype)
    expected = 0.9 * w.astype(np.float64) - 0.1 * (x.T.astype(np.float64) @ g)
    target = w.copy()
    address = target.__array_interface__["data"][0]
    blas.gemm(x.T, g, target, alpha=-0.1, beta=0.9)  # an SGD step with weight decay, as SGD asks
    assert target.__array_interface__["data"][0] == address
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(target, expected, rtol=rtol, atol=rtol)


def test_gemm_into_a_view_of_a_flat_buffer_writes_the_buffer(blas):
    flat = np.zeros(2 + 3 * 4, dtype=np.float32)
    view = flat[2:].reshape(3, 4)
    blas.gemm(np.ones((3, 2), np.float32), np.ones((2, 4), np.float32), view)
    assert flat[:2].tolist() == [0, 0] and (flat[2:] == 2).all()


def test_gemm_into_a_non_contiguous_out_still_writes_it(blas):
    out = np.zeros((4, 3), dtype=np.float32).T  # (3, 4), not C-contiguous
    blas.gemm(np.ones((3, 2), np.float32), np.ones((2, 4), np.float32), out)
    assert (out == 2).all()
    blas.gemm(np.ones((3, 2), np.float32), np.ones((2, 4), np.float32), out, beta=1.0)
    assert (out == 4).all()


@pytest.mark.parametrize("shapes", [((0, 3), (3, 4)), ((5, 3), (3, 0)), ((5, 0), (0, 4))])
def test_gemm_of_empty_operands_gives_beta_times_out(blas, shapes):
    a, b = np.ones(shapes[0], np.float32), np.ones(shapes[1], np.float32)
    out = np.full((a.shape[0], b.shape[1]), 2.0, np.float32)
    assert blas.gemm(a, b, out, alpha=0.5, beta=0.25) is out
    assert (out == 0.5).all()
    out.fill(np.nan)
    blas.gemm(a, b, out)
    assert (out == 0).all()
    with pytest.raises(ValueError):  # an empty operand of the wrong shape
        blas.gemm(a, np.ones((a.shape[1] + 1, 0), np.float32), np.empty((a.shape[0], 0)))


def test_gemm_refuses_mismatched_shapes(blas):
    a = np.ones((3, 2), np.float32)
    with pytest.raises(Exception):  # noqa: B017  (NumPy's ValueError or f2py's own error)
        blas.gemm(a, np.ones((3, 4), np.float32), np.empty((3, 4), np.float32))
    with pytest.raises(ValueError):
        blas.gemm(a, np.ones((2, 4), np.float32), np.empty((3, 5), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_rows_adds_the_row_to_every_row_in_place_exactly(blas, dtype):
    rng = np.random.default_rng(2)
    out = rng.standard_normal((6, 5)).astype(dtype)
    row = rng.standard_normal(5).astype(dtype)
    expected = out + row
    address = out.__array_interface__["data"][0]
    result = blas.add_rows(out, row, np.ones(6, dtype))
    assert result is out and out.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(out, expected)  # one addition per element: same rounding


def test_add_rows_outside_a_setting_and_for_other_layouts_falls_back_to_numpy(monkeypatch):
    from scipy.linalg import blas as scipy_blas

    from mnistlab.backend import blas as backend_blas

    called = []
    monkeypatch.setitem(backend_blas._GER, np.dtype(np.float32), lambda *a: called.append(a))
    row = np.arange(3, dtype=np.float32)
    out = np.zeros((4, 3), np.float32)
    blas = Blas()
    blas.add_rows(out, row, np.ones(4, np.float32))  # no setting active: NumPy's addition
    assert not called and (out == row).all()
    with blas.use(1, "numpy"):
        strided = np.zeros((4, 6), np.float32)[:, ::2]
        blas.add_rows(strided, row, np.ones(4, np.float32))  # not C-contiguous
        halves = np.zeros((4, 3), np.float16)
        blas.add_rows(halves, row.astype(np.float16), np.ones(4, np.float16))  # no GER for float16
        assert not called and (strided == row).all() and (halves == row).all()
    monkeypatch.setitem(backend_blas._GER, np.dtype(np.float32), scipy_blas.sger)
    with blas.use(1, "numpy"):
        out = np.full((4, 3), np.nan, np.float32)
        blas.add_rows(out, row, np.ones(4, np.float32))
        assert np.isnan(out).all()  # NaN stays NaN: it adds, never overwrites


def test_gemm_sends_plain_products_to_the_settings_library(monkeypatch):
    calls = []
    real_matmul = np.matmul
    monkeypatch.setattr(np, "matmul", lambda *a, **k: calls.append("numpy") or real_matmul(*a, **k))
    a, b = np.ones((3, 2), np.float32), np.ones((2, 4), np.float32)
    out = np.empty((3, 4), np.float32)
    blas = Blas()
    blas.gemm(a, b, out)
    with blas.use(1, "scipy"):
        blas.gemm(a, b, out)
    blas.gemm(a, b, out, beta=1.0)  # beta: SciPy's GEMM whatever the library
    assert calls == ["numpy"]
    assert (out == 4).all()


def test_long_thin_products_run_on_scipys_single_thread_while_numpys_pool_has_several(
    monkeypatch,
):
    """A convolution's kernel gradient, (taps, positions) @ (positions, filters): its few outputs
    would make NumPy's threads synchronize once per inner block (see Blas._thin)."""
    calls = []
    real_matmul = np.matmul
    monkeypatch.setattr(
        np, "matmul", lambda *a, **k: calls.append(a[0].shape) or real_matmul(*a, **k)
    )
    rng = np.random.default_rng(0)
    cols_t = rng.standard_normal((9, 40_000), dtype=np.float32)
    grad = rng.standard_normal((40_000, 32), dtype=np.float32)
    wide = rng.standard_normal((128, 784), dtype=np.float32)
    out, wide_out = np.empty((9, 32), np.float32), np.empty((128, 32), np.float32)
    blas = Blas()
    with blas.training(2):
        blas.gemm(cols_t, grad, out)  # thin: SciPy's GEMM
        blas.gemm(wide, grad[:784], wide_out)  # a minibatch product: NumPy's
    with blas.training(1):
        blas.gemm(cols_t, grad, out)  # one thread anyway: NumPy's
    assert calls == [(128, 784), (9, 40_000)]
    np.testing.assert_allclose(out, cols_t.astype(np.float64) @ grad, rtol=1e-4, atol=1e-3)


def test_each_model_has_its_own_setting_which_its_layers_share():
    from mnistlab.nn import build_mlp

    first = build_mlp([4], 3).build(5, seed=0)
    second = build_mlp([4], 3).build(5, seed=0)
    assert all(layer.blas is first.blas for layer in first.layers)
    with first.blas.use(1, "scipy"):
        assert first.layers[0].blas.library == "scipy"
        assert second.blas.library is None  # another model's products are not redirected
    assert first.blas.library is None


def test_an_empty_batch_goes_through_a_network_in_either_setting():
    from mnistlab.nn import build_cnn

    model = build_cnn([2], [3], 4).build((6, 6, 1), seed=0)
    empty = np.empty((0, 36), np.float32)
    with model.blas.inference():
        assert model.forward(empty).shape == (0, 4)
    with model.blas.use(1, "scipy"):  # every product through SciPy's BLAS, as fused SGD's
        assert model.forward(empty, training=True).shape == (0, 4)
        model.backward(np.empty((0, 4), np.float32))
        assert all((p.grad == 0).all() for p in model.parameters())
