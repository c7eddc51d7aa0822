"""Small array functions shared by layers, losses and models, and the network's matrix products.

gemm() computes out <- alpha * a @ b + beta * out. A plain product (alpha 1, beta 0) is np.matmul
(NumPy's BLAS), unless the products have been sent to SciPy's BLAS (backend.blas.blas_threads:
the training loop does so while the optimizer applies its step inside the weight-gradient GEMMs,
nn.parameters.GradientSink; inference does so too). Anything else calls GEMM through
`scipy.linalg.blas`, since np.matmul has no alpha or beta. add_rows() adds a bias to every row
with BLAS's rank-1 update.

BLAS reads matrices column-major, and a C-contiguous (m, n) array read column-major is its (n, m)
transpose, so SciPy's GEMM is asked for the product transposed: out.T <- alpha * b.T @ a.T +
beta * out.T. Operands that are C-contiguous or the transpose of a C-contiguous array (`w.T`) are
read where they lie, through BLAS's transpose flags.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from mnistlab.backend import blas as _blas

_GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}
_GER = {np.dtype(np.float32): blas.sger, np.dtype(np.float64): blas.dger}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in a new array, stable for any finite input (the row maximum is
    subtracted before exp, so every term lies in (0, 1])."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def new_work_array(shape: tuple[int, ...], dtype, fill=None) -> np.ndarray:
    """A work array: uninitialized (fill None), or filled once with a number."""
    if fill is None:
        return np.empty(shape, dtype=dtype)
    return np.full(shape, fill, dtype=dtype)


def gemm(
    a: np.ndarray, b: np.ndarray, out: np.ndarray, alpha: float = 1.0, beta: float = 0.0
) -> np.ndarray:
    """out <- alpha * (a @ b) + beta * out, in place, in one BLAS call; returns out.

    a: (m, k), b: (k, n), out: (m, n), float32 or float64 (the routine follows out's dtype;
    operands of another dtype are converted). With beta = 0, out's old contents are not read
    (NaN or uninitialized memory included), as BLAS specifies. Shapes that do not match raise
    SciPy's (or NumPy's) error. This sits in every step (8 calls at batch 32, a 0.4 ms step):
    it does no more than choose the library and the transpose flags; f2py copies an operand
    that is neither C- nor Fortran-contiguous (with its transpose flag set, the copy is right).
    """
    if alpha == 1.0 and beta == 0.0 and _blas.products_library != "scipy":
        return np.matmul(a, b, out=out)
    # BLAS is given a.T and b.T (column-major views of the C-contiguous arrays): flag 0 for a
    # C-contiguous operand (its .T is Fortran-contiguous), 1 otherwise (the array itself).
    first, trans_first = (b.T, 0) if b.flags.c_contiguous else (b, 1)
    second, trans_second = (a.T, 0) if a.flags.c_contiguous else (a, 1)
    target = out.T
    result = _GEMM[out.dtype](alpha, first, second, beta, target, trans_first, trans_second, 1)
    if result is not target:  # out was not C-contiguous: BLAS wrote a copy
        out[...] = result.T
    return out


def add_rows(out: np.ndarray, row: np.ndarray, ones: np.ndarray) -> np.ndarray:
    """out[i] += row for every row i of a 2-D `out`, in place; returns out. `ones`: a vector of
    out.shape[0] ones in out's dtype (the caller keeps it, so that no call allocates).

    A bias added to a batch of outputs. NumPy's broadcast `out += row` runs its inner loop once
    per row (a few hundred elements each): 11-18 us for 128 x 200 here, 2.0 ms for 10,000 x 200.
    BLAS's rank-1 update GER (out.T <- row ones^T + out.T, out read column-major) does the same
    sums in one call: 5.7 us and 0.26 ms (SciPy's BLAS; /tmp microbenchmarks on the 2-core
    machine). Sums are exact to the same rounding (one addition per element).
    """
    ger = _GER.get(out.dtype)
    if (
        ger is None
        or out.ndim != 2
        or not out.flags.c_contiguous
        or row.dtype != out.dtype
        # outside blas_threads both pools may be multi-threaded, and alternating between them
        # (NumPy's GEMMs, SciPy's GER) let their idle workers take the cores from each other
        # (10,000-image inference: 40 ms instead of 19 ms)
        or _blas.products_library is None
    ):
        out += row
        return out
    target = out.T
    result = ger(1.0, row, ones, 1, 1, target, 1, 1, 1)  # GER reads row and ones only
    if result is not target:  # not expected for a C-contiguous out; kept correct regardless
        out[...] = result.T
    return out
