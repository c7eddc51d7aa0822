"""How many threads the BLAS libraries use.

NumPy's and SciPy's wheels each bundle an OpenBLAS of their own, each with its own thread pool;
mnistlab calls NumPy's for the matrix products and SciPy's for the optimizers' axpy. After a
call, an OpenBLAS worker spins for a while before it sleeps. With two threads in both pools, on
a 2-core machine, the two pools' spinning workers took the cores from each other at every switch
between a GEMM and an axpy: an epoch at batch 128 took 5 s instead of 0.6 s. So `blas_threads(n)`
gives NumPy's BLAS `n` threads and every other BLAS library one (SciPy's axpy over 100,000
parameters is memory-bound: a second thread would not make it faster).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def _bundled_with(package_file: str, libraries: list[str]) -> list[str]:
    """The libraries that lie inside a package or in the `<name>.libs` folder its wheel adds."""
    package = Path(package_file).resolve().parent
    places = (package, package.parent / f"{package.name}.libs")
    return [p for p in libraries if any(Path(p).resolve().is_relative_to(q) for q in places)]


@functools.cache
def numpy_blas_paths() -> tuple[str, ...]:
    """The file paths of the BLAS libraries NumPy itself loaded: its wheel's (in `numpy.libs`);
    else every loaded BLAS library but SciPy's wheel's (a NumPy built against the system's BLAS);
    else all of them (one BLAS shared by both)."""
    import scipy

    libraries = [info["filepath"] for info in threadpool_info() if info["user_api"] == "blas"]
    own = _bundled_with(np.__file__, libraries)
    if not own:
        scipys = set(_bundled_with(scipy.__file__, libraries))
        own = [path for path in libraries if path not in scipys]
    return tuple(own or libraries)


def blas_threads(threads: int):
    """A context manager: NumPy's BLAS at `threads` threads, any other BLAS library at one."""
    return threadpool_limits(limits={**dict.fromkeys(numpy_blas_paths(), threads), "blas": 1})


def numpy_blas_threads() -> int:
    """The threads NumPy's BLAS may use now: the cores, or less where the environment
    (OPENBLAS_NUM_THREADS) or an enclosing threadpool_limits (a sweep's worker) says so."""
    paths = set(numpy_blas_paths())
    counts = [i["num_threads"] for i in threadpool_info() if i["filepath"] in paths]
    return max(1, min(counts, default=1))
