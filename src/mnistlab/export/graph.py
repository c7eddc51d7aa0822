"""GraphBuilder: the nodes and constants of one ONNX graph, added one operation at a time.

Every exporter (mnistlab.export.networks, mnistlab.export.classical) writes its math through
it: `node("MatMul", a, b)` returns the name of the output, `constant(array)` the name of an
initializer, so that a model's graph reads like its NumPy code. Imports `onnx` (the `export`
extra); mnistlab.export.onnx imports this module only when asked to export.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: NumPy dtypes as ONNX tensor element types
ELEMENT_TYPES = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.bool_): TensorProto.BOOL,
}


class GraphBuilder:
    """Nodes and initializers in the order they are added; every name is unique."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._used: dict[str, int] = {}

    def _name(self, hint: str) -> str:
        count = self._used.get(hint, 0)
        self._used[hint] = count + 1
        return hint if count == 0 else f"{hint}_{count}"

    def constant(self, array, name: str = "const", dtype=None) -> str:
        """An initializer holding `array` (in `dtype` if given); returns its name."""
        value = np.asarray(array, dtype=dtype)
        if value.dtype not in ELEMENT_TYPES:
            raise TypeError(f"no ONNX element type for {value.dtype}")
        unique = self._name(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), unique))
        return unique

    def node(self, op: str, *inputs: str, name: str | None = None, outputs: int = 1, **attrs):
        """Add one `op` node over `inputs`; its output's name (a list of names when `outputs`
        > 1). Attributes as keywords, as onnx.helper.make_node takes them."""
        hint = name or op.lower()
        names = [self._name(hint if outputs == 1 else f"{hint}_{i}") for i in range(outputs)]
        self.nodes.append(
            helper.make_node(op, list(inputs), names, name=self._name(f"{hint}_node"), **attrs)
        )
        return names[0] if outputs == 1 else names

    def cast(self, value: str, dtype) -> str:
        return self.node("Cast", value, to=ELEMENT_TYPES[np.dtype(dtype)], name="cast")

    def axes(self, *axes: int) -> str:
        """The axes input of ReduceSum, Unsqueeze and the like (opset 13 on)."""
        return self.constant(np.array(axes, dtype=np.int64), "axes")

    def reduce_sum(self, value: str, axis: int, keepdims: bool = False) -> str:
        return self.node("ReduceSum", value, self.axes(axis), keepdims=int(keepdims))

    def affine(self, value: str, weight: np.ndarray, bias: np.ndarray | None, name: str) -> str:
        """value @ weight + bias, in the weight's dtype: one Gemm (value: (N, in))."""
        weight_name = self.constant(weight, f"{name}_weight")
        if bias is None:
            return self.node("MatMul", value, weight_name, name=name)
        bias_name = self.constant(bias, f"{name}_bias", dtype=weight.dtype)
        return self.node("Gemm", value, weight_name, bias_name, name=name)

    def normalize_rows(self, value: str) -> str:
        """Each row divided by its sum."""
        return self.node("Div", value, self.reduce_sum(value, 1, keepdims=True), name="normalized")
