"""Process-wide machine state that the engine's speed depends on, owned here and nowhere else.

`blas`: which BLAS library (NumPy's or SciPy's OpenBLAS) runs the network's matrix products, and
with how many threads: a model's `Blas` setting, whose training() and inference() set the
process's thread pools for a block. `fpu`: subnormal floats computed as zero while training and
predicting. Every other package reaches this state only through these two modules' context
managers.
"""
