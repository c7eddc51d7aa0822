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


@functools.cache
def numpy_blas_paths() -> tuple[str, ...]:
    """The file paths of the BLAS libraries NumPy itself loaded (its wheel's, in `numpy.libs`
    or inside the package); all loaded BLAS libraries when none lies there (a NumPy built
    against the system's BLAS shares it with SciPy)."""
    package = Path(np.__file__).resolve().parent
    places = (package, package.parent / "numpy.libs")
    libraries = [info["filepath"] for info in threadpool_info() if info["user_api"] == "blas"]
    own = [
        path
        for path in libraries
        if any(Path(path).resolve().is_relative_to(place) for place in places)
    ]
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
