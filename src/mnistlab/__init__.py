"""mnistlab: a fast, from-scratch NumPy laboratory for MNIST-family image classification."""

__version__ = "0.1.0"

from mnistlab.data import Dataset, load_dataset  # noqa: E402

__all__ = ["Dataset", "load_dataset", "__version__"]
