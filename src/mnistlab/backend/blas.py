"""Which BLAS library runs a model's matrix products, and with how many threads.

NumPy's and SciPy's wheels each bundle an OpenBLAS of their own, each with its own thread pool.
np.matmul calls NumPy's; `scipy.linalg.blas` calls SciPy's, which alone offers GEMM's alpha and
beta (out <- alpha * a @ b + beta * out) and the rank-1 update GER. After a call, an OpenBLAS
worker spins for a while before it sleeps: when both pools run several threads, the spinning
workers of one take the cores from the other at every switch between the libraries, and a
training epoch becomes several times slower. The process's pools are therefore set in this
module only, by `blas_threads(n, library)`: `library`'s pool at n threads, every other at one.

A model's products follow a `Blas` object (Sequential.blas, shared with its layers at build):

- `Blas.training(threads, scaled_gemms)`, entered by the Trainer for a fit: NumPy's BLAS runs
  the plain products (np.matmul: NumPy's OpenBLAS is the faster on minibatch shapes), SciPy's
  the GEMMs with alpha and beta and the bias additions (GER), at one thread. When the step
  needs GEMMs with alpha and beta (an optimizer that applies its update inside the weight-
  gradient GEMMs: nn.parameters.GradientSink) and more than one thread runs, every product goes
  to SciPy's instead, so that one pool does all the multi-threaded work.
- `Blas.inference()`, entered by Sequential.predict_logits and Trainer.evaluate: SciPy's BLAS
  runs the products and the bias additions, with a thread per core of the enclosing training
  setting (its threads, or the cores it was told it occupies: a fit whose minibatch halves run
  at once, one BLAS thread each, validates on both cores), or else with every thread the pools
  may use now (available_threads()). This sets the process's pools for the duration of the call
  (SciPy's at that count, any other at one) and restores them on exit.
- Outside both, nothing is set: both pools keep the process's settings (usually a thread per
  core), plain products go to np.matmul and biases are added by NumPy's broadcast `+=`, so that
  no call alternates between two multi-threaded pools.

benchmarks/inference.py times NumPy's and SciPy's GEMMs and both bias additions side by side.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy
from scipy.linalg import blas as scipy_blas  # (loads SciPy's BLAS: threadpoolctl sees it)
from threadpoolctl import ThreadpoolController, threadpool_info

LIBRARIES = ("numpy", "scipy")

_GEMM = {np.dtype(np.float32): scipy_blas.sgemm, np.dtype(np.float64): scipy_blas.dgemm}
_GER = {np.dtype(np.float32): scipy_blas.sger, np.dtype(np.float64): scipy_blas.dger}
#: a product with at most this many outputs and an inner dimension of at least THIN_INNER runs
#: on SciPy's single-threaded pool during training (Blas._thin)
THIN_OUTPUTS = 4096
THIN_INNER = 16384


class Blas:
    """Where one model's matrix products run: `library` ("numpy", "scipy", or None while no
    setting is active) with `threads` threads. gemm() and add_rows() follow it; training() and
    inference() set it, and the process's thread pools with it, for the duration of a block.
    """

    def __init__(self) -> None:
        self.library: str | None = None
        self.threads = 1
        #: the cores the active setting occupies (threads, unless training() was told more):
        #: what a forward pass inside it may use
        self.cores = 1

    def __repr__(self) -> str:
        return f"Blas(library={self.library!r}, threads={self.threads}, cores={self.cores})"

    # ------------------------------------------------------------------ settings

    @contextlib.contextmanager
    def use(self, threads: int, library: str, cores: int | None = None) -> Iterator[Blas]:
        """A context manager: blas_threads(threads, library), and this object's products sent
        to `library` meanwhile; the previous setting comes back on exit (settings nest).
        cores: the cores the setting occupies (default: threads)."""
        with blas_threads(threads, library):
            previous = self.library, self.threads, self.cores
            self.library, self.threads = library, threads
            self.cores = max(threads, cores or threads)
            try:
                yield self
            finally:
                self.library, self.threads, self.cores = previous

    def training(self, threads: int, scaled_gemms: bool = False, cores: int | None = None):
        """The setting for training steps at `threads` threads (see the module's docstring).
        scaled_gemms: whether the step runs GEMMs with alpha and beta (SciPy's BLAS only).
        cores: the cores the steps occupy, when more than the threads (a step whose two halves
        run at once, one BLAS thread each: train.parallel); inference() inside the setting
        (the validation data's pass) runs at that many threads."""
        library = "scipy" if scaled_gemms and threads > 1 else "numpy"
        return self.use(threads, library, cores)

    def inference(self):
        """The setting for a forward pass: SciPy's BLAS, at the cores of the enclosing setting
        or, outside any, at available_threads(). Sets the process's pools until the block ends."""
        threads = self.cores if self.library is not None else available_threads()
        return self.use(threads, "scipy")

    # ------------------------------------------------------------------ products

    def gemm(
        self, a: np.ndarray, b: np.ndarray, out: np.ndarray, alpha: float = 1.0, beta: float = 0.0
    ) -> np.ndarray:
        """out <- alpha * (a @ b) + beta * out, in place, in one BLAS call; returns out.

        a: (m, k), b: (k, n), out: (m, n), float32 or float64 (the routine follows out's dtype;
        operands of another dtype are converted). With beta = 0, out's old contents are not read
        (NaN or uninitialized memory included), as BLAS specifies. Shapes that do not match raise
        SciPy's (or NumPy's) error. A plain product (alpha 1, beta 0) is np.matmul unless the
        setting sends products to SciPy's BLAS; np.matmul has no alpha or beta.

        BLAS reads matrices column-major, and a C-contiguous (m, n) array read column-major is
        its (n, m) transpose, so SciPy's GEMM is asked for the product transposed: out.T <-
        alpha * b.T @ a.T + beta * out.T. Operands that are C-contiguous or the transpose of a
        C-contiguous array (`w.T`) are read where they lie, through BLAS's transpose flags; f2py
        copies any other operand (with its transpose flag set, the copy is right). This runs
        several times in every step, so it does no more than choose the routine and the flags.
        """
        if alpha == 1.0 and beta == 0.0 and self.library != "scipy" and not self._thin(a, out):
            return np.matmul(a, b, out=out)
        if a.size == 0 or b.size == 0:  # f2py's GEMM refuses empty operands (an empty batch)
            return _empty_gemm(a, b, out, beta)
        # flag 0 for a C-contiguous operand (its .T is Fortran-contiguous), 1 otherwise
        first, trans_first = (b.T, 0) if b.flags.c_contiguous else (b, 1)
        second, trans_second = (a.T, 0) if a.flags.c_contiguous else (a, 1)
        target = out.T
        result = _GEMM[out.dtype](alpha, first, second, beta, target, trans_first, trans_second, 1)
        if result is not target:  # out was not C-contiguous: BLAS wrote a copy
            out[...] = result.T
        return out

    def gemm_stack(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out[i, j] <- a[i, j] @ b[i, j] for stacks of matrices (..., m, k), (..., k, n) and
        (..., m, n); returns out. Under NumPy's BLAS, one np.matmul call for the stack (one
        Python call and one release of the interpreter's lock, where a loop would take both
        per product); otherwise gemm() per product. Each matrix may have rows further apart
        than their length (BLAS's leading dimension)."""
        if self.library != "scipy":
            return np.matmul(a, b, out=out)
        for index in np.ndindex(*out.shape[:-2]):
            self.gemm(a[index], b[index], out[index])
        return out

    def _thin(self, a: np.ndarray, out: np.ndarray) -> bool:
        """Whether a product is long and thin (a few hundred outputs, each a sum over tens of
        thousands of terms: a convolution's kernel gradient over a batch's positions) while
        NumPy's pool runs several threads. OpenBLAS splits such a product between its threads
        and synchronizes them once per block of the inner dimension, hundreds of times; when
        anything else shares the cores, each wait costs a time slice (benchmarks/thin_gemm.py:
        milliseconds alone, up to seconds under load). SciPy's pool, at one thread during
        training, computes it without waiting on anyone."""
        return (
            self.library == "numpy"
            and self.threads > 1
            and out.size <= THIN_OUTPUTS
            and a.shape[-1] >= THIN_INNER
        )

    def add_rows(self, out: np.ndarray, row: np.ndarray, ones: np.ndarray) -> np.ndarray:
        """out[i] += row for every row i of a 2-D `out`, in place; returns out. `ones`: a vector
        of out.shape[0] ones in out's dtype (the caller keeps it, so that no call allocates).

        A bias added to a batch of outputs. NumPy's broadcast `out += row` runs its inner loop
        once per row, a few hundred elements each; BLAS's rank-1 update GER (out.T <- row ones^T
        + out.T, out read column-major) does the same sums in one call. Sums are exact to the
        same rounding (one addition per element). Outside a setting, or for a layout or dtype
        GER does not take, NumPy adds.
        """
        ger = _GER.get(out.dtype)
        if (
            ger is None
            or out.ndim != 2
            or not out.flags.c_contiguous
            or row.dtype != out.dtype
            or self.library is None
            or out.size == 0  # GER refuses an empty out (an empty batch): nothing to add
        ):
            out += row
            return out
        target = out.T
        result = ger(1.0, row, ones, 1, 1, target, 1, 1, 1)  # GER reads row and ones only
        if result is not target:  # not expected for a C-contiguous out; kept correct regardless
            out[...] = result.T
        return out


def _empty_gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, beta: float) -> np.ndarray:
    """Blas.gemm where an operand has no elements: the product is all zeros (or there is
    nothing to write), so out <- beta * out; shapes are checked as for any product."""
    if (
        a.ndim != 2
        or b.ndim != 2
        or a.shape[1] != b.shape[0]
        or out.shape != (a.shape[0], b.shape[1])
    ):
        raise ValueError(
            f"gemm: operands of shapes {a.shape} and {b.shape} do not give out of shape {out.shape}"
        )
    if beta == 0.0:
        out.fill(0)
    else:
        out *= beta
    return out


# ---------------------------------------------------------------------- the process's pools


@functools.cache
def _controller() -> ThreadpoolController:
    """The loaded BLAS libraries and their thread settings. threadpoolctl finds the libraries by
    scanning the process's shared objects, which is slow next to setting their threads, so they
    are found once, on first use (NumPy's and SciPy's are loaded by then: this module imports
    both). A BLAS loaded later (PyTorch's, say) is left as it is."""
    return ThreadpoolController()


def _bundled_with(package_file: str, libraries: list[str]) -> list[str]:
    """The libraries that lie inside a package or in the `<name>.libs` folder its wheel adds."""
    package = Path(package_file).resolve().parent
    places = (package, package.parent / f"{package.name}.libs")
    return [p for p in libraries if any(Path(p).resolve().is_relative_to(q) for q in places)]


@functools.cache
def blas_paths(library: str) -> tuple[str, ...]:
    """The file paths of the BLAS that `library` ("numpy" or "scipy") calls: the one its wheel
    bundles; else every loaded BLAS but the other's wheel's (a package built against the
    system's BLAS); else all of them (one BLAS shared by both)."""
    own_file, other_file = (
        (np.__file__, scipy.__file__) if library == "numpy" else (scipy.__file__, np.__file__)
    )
    libraries = [info["filepath"] for info in threadpool_info() if info["user_api"] == "blas"]
    own = _bundled_with(own_file, libraries)
    if not own:
        others = set(_bundled_with(other_file, libraries))
        own = [path for path in libraries if path not in others]
    return tuple(own or libraries)


@contextlib.contextmanager
def blas_threads(threads: int, library: str = "numpy"):
    """A context manager: `library`'s BLAS at `threads` threads, any other BLAS at one; the
    previous settings come back on exit. It sets the process's pools only: a model's products
    follow its Blas object (Blas.use enters this)."""
    if library not in LIBRARIES:
        raise ValueError(f"library must be one of {LIBRARIES}, got {library!r}")
    limits = {**dict.fromkeys(blas_paths(library), threads), "blas": 1}
    with _controller().limit(limits=limits):
        yield


def available_threads(*libraries: str) -> int:
    """The threads the BLAS of `libraries` (default: both) may use now: the cores, or less where
    the environment (OPENBLAS_NUM_THREADS) or an enclosing threadpool_limits (a sweep's worker)
    says so."""
    paths = {path for library in libraries or LIBRARIES for path in blas_paths(library)}
    counts = [i["num_threads"] for i in _controller().info() if i["filepath"] in paths]
    return max(1, min(counts, default=1))
