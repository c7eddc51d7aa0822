"""Taking a fitted model to other runtimes: `to_onnx` (mnistlab.export.onnx).

The exporters read an estimator's learned attributes and its Sequential network, dispatching on
its `model_name`; they import nothing from mnistlab.models, so that a model can offer
`to_onnx` as a method. The `onnx` package (the `export` extra) is imported only when exporting.
"""

from mnistlab.export.onnx import EXPORTABLE, OPSET, to_onnx

__all__ = ["EXPORTABLE", "OPSET", "to_onnx"]
