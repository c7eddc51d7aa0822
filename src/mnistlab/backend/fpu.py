"""Subnormal floats flushed to zero while mnistlab trains and predicts.

A float32 below 1.18e-38 (a subnormal) makes the x86 core that meets it take a microcode assist
of a hundred cycles or more per instruction, so a GEMM or an elementwise pass with a few percent
of subnormal entries takes several times as long. Training makes them: once a network is
confident, softmax probabilities of exp(-88) and below, and the products and squares of tiny
gradients downstream, fall into that range, and epochs grow slower as training goes on
(benchmarks/subnormals.py trains with and without the flush, epochs alternating).

`flush_subnormals()` sets the two MXCSR bits that make the core treat subnormal inputs as zero
(DAZ) and write zero where a result would be subnormal (FTZ), as TensorFlow and XLA's CPU client
(JAX) do for their work (PyTorch has it as `torch.set_flush_denormal(True)`); nothing at or above
1.18e-38 changes. MXCSR belongs to a thread, so it covers the calling thread (and threads it
starts inside the block, which inherit it): NumPy's ufuncs and any matrix product the BLAS
computes on that thread (all of them with one BLAS thread), not the BLAS's worker threads, which
were started when NumPy was imported. The previous bits are restored on exit.

Supported on x86-64 Linux with glibc (the layout of glibc's fenv_t is known there: the x87
environment, then MXCSR); elsewhere the context does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import platform
import sys

#: MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6)
FLUSH_BITS = (1 << 15) | (1 << 6)


class _Fenv(ctypes.Structure):
    """glibc's fenv_t on x86-64: 28 bytes of x87 environment, then MXCSR."""

    _fields_ = [("x87", ctypes.c_uint16 * 14), ("mxcsr", ctypes.c_uint32)]


@functools.cache
def _libm():
    """glibc's libm, or None where the environment layout is not known."""
    if not (
        sys.platform == "linux"
        and platform.machine() == "x86_64"
        and platform.libc_ver()[0] == "glibc"
    ):
        return None
    try:
        return ctypes.CDLL("libm.so.6")
    except OSError:
        return None


def supported() -> bool:
    """Whether flush_subnormals() takes effect on this platform."""
    return _libm() is not None


def _set_bits(libm, bits: int) -> int:
    """Set the flush bits of this thread's MXCSR to `bits`; return what they were."""
    env = _Fenv()
    if libm.fegetenv(ctypes.byref(env)) != 0:
        raise OSError("fegetenv failed")
    before = env.mxcsr & FLUSH_BITS
    if before != bits:
        env.mxcsr = (env.mxcsr & ~FLUSH_BITS) | bits
        if libm.fesetenv(ctypes.byref(env)) != 0:
            raise OSError("fesetenv failed")
    return before


@contextlib.contextmanager
def flush_subnormals():
    """Within the block, this thread computes subnormal floats as zero (see the module)."""
    libm = _libm()
    if libm is None:
        yield
        return
    before = _set_bits(libm, FLUSH_BITS)
    try:
        yield
    finally:
        _set_bits(libm, before)
