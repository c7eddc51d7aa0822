"""gemm: alpha and beta, every operand layout, in place, through either library; add_rows."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.backend.blas import blas_threads
from mnistlab.nn.functional import add_rows, gemm


@pytest.fixture(params=["numpy", "scipy"])
def library(request):
    """Plain products through np.matmul, or (as while SGD steps inside the GEMMs) SciPy's BLAS."""
    with blas_threads(1, request.param):
        yield request.param


def _layouts(m: np.ndarray) -> dict[str, np.ndarray]:
    """m as a C-contiguous array, as the transpose of one, and as a strided view."""
    wide = np.zeros((m.shape[0], 2 * m.shape[1]), dtype=m.dtype)
    wide[:, ::2] = m
    return {"C": np.ascontiguousarray(m), "F": np.asfortranarray(m), "strided": wide[:, ::2]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_layout", ["C", "F", "strided"])
@pytest.mark.parametrize("b_layout", ["C", "F", "strided"])
def test_gemm_equals_matmul_for_every_layout(library, dtype, a_layout, b_layout):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 7)).astype(dtype)
    b = rng.standard_normal((7, 3)).astype(dtype)
    out = np.full((5, 3), np.nan, dtype=dtype)  # beta = 0 must not read it
    result = gemm(_layouts(a)[a_layout], _layouts(b)[b_layout], out)
    assert result is out
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_alpha_and_beta_accumulate_in_place(library, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 6)).astype(dtype)
    g = rng.standard_normal((8, 4)).astype(dtype)
    w = rng.standard_normal((6, 4)).astype(dtype)
    expected = 0.9 * w.astype(np.float64) - 0.1 * (x.T.astype(np.float64) @ g)
    target = w.copy()
    address = target.__array_interface__["data"][0]
    gemm(x.T, g, target, alpha=-0.1, beta=0.9)  # an SGD step with weight decay, as SGD asks
    assert target.__array_interface__["data"][0] == address
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(target, expected, rtol=rtol, atol=rtol)


def test_gemm_into_a_view_of_a_flat_buffer_writes_the_buffer(library):
    flat = np.zeros(2 + 3 * 4, dtype=np.float32)
    view = flat[2:].reshape(3, 4)
    gemm(np.ones((3, 2), np.float32), np.ones((2, 4), np.float32), view)
    assert flat[:2].tolist() == [0, 0] and (flat[2:] == 2).all()


def test_gemm_into_a_non_contiguous_out_still_writes_it(library):
    out = np.zeros((4, 3), dtype=np.float32).T  # (3, 4), not C-contiguous
    gemm(np.ones((3, 2), np.float32), np.ones((2, 4), np.float32), out)
    assert (out == 2).all()
    gemm(np.ones((3, 2), np.float32), np.ones((2, 4), np.float32), out, beta=1.0)
    assert (out == 4).all()


def test_gemm_refuses_mismatched_shapes(library):
    with pytest.raises(Exception):  # noqa: B017  (NumPy's ValueError or f2py's own error)
        gemm(np.ones((3, 2), np.float32), np.ones((3, 4), np.float32), np.empty((3, 4), np.float32))
    with pytest.raises(ValueError):
        gemm(np.ones((3, 2), np.float32), np.ones((2, 4), np.float32), np.empty((3, 5), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_rows_adds_the_row_to_every_row_in_place_exactly(library, dtype):
    rng = np.random.default_rng(2)
    out = rng.standard_normal((6, 5)).astype(dtype)
    row = rng.standard_normal(5).astype(dtype)
    expected = out + row
    address = out.__array_interface__["data"][0]
    result = add_rows(out, row, np.ones(6, dtype))
    assert result is out and out.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(out, expected)  # one addition per element: same rounding


def test_add_rows_outside_blas_threads_and_for_other_layouts_falls_back_to_numpy(monkeypatch):
    from scipy.linalg import blas

    from mnistlab.nn import functional

    called = []
    monkeypatch.setitem(functional._GER, np.dtype(np.float32), lambda *a: called.append(a))
    row = np.arange(3, dtype=np.float32)
    out = np.zeros((4, 3), np.float32)
    add_rows(out, row, np.ones(4, np.float32))  # outside blas_threads: NumPy's addition
    assert not called and (out == row).all()
    with blas_threads(1, "numpy"):
        strided = np.zeros((4, 6), np.float32)[:, ::2]
        add_rows(strided, row, np.ones(4, np.float32))  # not C-contiguous
        halves = np.zeros((4, 3), np.float16)
        add_rows(halves, row.astype(np.float16), np.ones(4, np.float16))  # no GER for float16
        assert not called and (strided == row).all() and (halves == row).all()
    monkeypatch.setitem(functional._GER, np.dtype(np.float32), blas.sger)
    with blas_threads(1, "numpy"):
        out = np.full((4, 3), np.nan, np.float32)
        add_rows(out, row, np.ones(4, np.float32))
        assert np.isnan(out).all()  # NaN stays NaN: it adds, never overwrites
