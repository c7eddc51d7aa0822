"""Which BLAS library runs the network's matrix products, and with how many threads.

NumPy's and SciPy's wheels each bundle an OpenBLAS of their own, each with its own thread pool.
np.matmul calls NumPy's; `scipy.linalg.blas` calls SciPy's (the optimizers' axpy, and the GEMMs
with alpha and beta that np.matmul cannot do: nn.functional.gemm). After a call, an OpenBLAS
worker spins for a while before it sleeps. With two threads in both pools, on a 2-core machine,
the two pools' spinning workers took the cores from each other at every switch from one library
to the other: an epoch at batch 128 took 5 s instead of 0.6 s. So training runs inside
`blas_threads(n, library)`: the library that runs the products at `n` threads, every other at one.

The products go to NumPy's (its OpenBLAS was up to 30% faster on some minibatch shapes here:
784x100 at batch 32). Only the GEMMs with alpha and beta, which an optimizer that applies its step
inside the weight-gradient products asks for (plain SGD, momentum: nn.parameters.GradientSink),
go to SciPy's; with one thread per library that is harmless, and with more the trainer sends
every product of the step to SciPy's (`blas_threads(n, "scipy")`), so that one pool does all the
multi-threaded work. Inference (`inference_blas()`) sends its products and bias additions to
SciPy's: the bias rides in BLAS's rank-1 update (nn.functional.add_rows), and 10,000 images took
19.1 ms that way against 20.1 ms with NumPy's GEMMs and NumPy's broadcast addition.

Outside any of these contexts both pools keep their own settings (usually a thread per core),
and the layers call SciPy's BLAS only where NumPy has no equivalent (`products_library` is None).
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import numpy as np
import scipy
import scipy.linalg.blas  # noqa: F401  (loads SciPy's BLAS, so that threadpoolctl sees it)
from threadpoolctl import ThreadpoolController, threadpool_info

LIBRARIES = ("numpy", "scipy")

#: the library nn.functional sends products to now: set by blas_threads, None outside it
products_library: str | None = None
#: the threads blas_threads gave that library (meaningful while products_library is set)
products_threads = 1


@functools.cache
def _controller() -> ThreadpoolController:
    """The loaded BLAS libraries and their thread settings. threadpoolctl finds the libraries by
    scanning the process's shared objects, 0.8 ms a call here, so they are found once, on first
    use (NumPy's and SciPy's are loaded by then: this module imports both); setting the threads
    then takes 30 us. A BLAS loaded later (PyTorch's, say) is left as it is."""
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
    """A context manager: `library`'s BLAS at `threads` threads, any other BLAS at one, and the
    network's products sent to `library` meanwhile (see the module's docstring)."""
    global products_library, products_threads
    if library not in LIBRARIES:
        raise ValueError(f"library must be one of {LIBRARIES}, got {library!r}")
    limits = {**dict.fromkeys(blas_paths(library), threads), "blas": 1}
    previous = products_library, products_threads
    with _controller().limit(limits=limits):
        products_library, products_threads = library, threads
        try:
            yield
        finally:
            products_library, products_threads = previous


def inference_blas():
    """A context manager for a forward pass: SciPy's BLAS runs the products and the bias
    additions, with the threads the products have now (inside blas_threads, its count; else
    what available_threads() allows), every other BLAS at one thread."""
    threads = products_threads if products_library is not None else available_threads()
    return blas_threads(threads, "scipy")


def available_threads(*libraries: str) -> int:
    """The threads the BLAS of `libraries` (default: both) may use now: the cores, or less where
    the environment (OPENBLAS_NUM_THREADS) or an enclosing threadpool_limits (a sweep's worker)
    says so."""
    paths = {path for library in libraries or LIBRARIES for path in blas_paths(library)}
    counts = [i["num_threads"] for i in _controller().info() if i["filepath"] in paths]
    return max(1, min(counts, default=1))
