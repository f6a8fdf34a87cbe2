"""Small models the onnxruntime-API tests share, built with onnx.helper."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 10  # what onnxruntime 1.31 reads


def model(nodes, inputs, outputs, initializers=(), opset=18, **kwargs):
    graph = helper.make_graph(nodes, kwargs.pop("graph_name", "g"), inputs, outputs, list(initializers),
                              doc_string=kwargs.pop("graph_doc", ""))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION, **kwargs)
    return m


def mul_model(**kwargs):
    """Y = X * W with W = [[1, 2], [3, 4], [5, 6]] (onnxruntime's mul_1 example)."""
    w = numpy_helper.from_array(np.array([[1, 2], [3, 4], [5, 6]], np.float32), "W")
    return model([helper.make_node("Mul", ["X", "W"], ["Y"], name="mul_0")],
                 [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 2])],
                 [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 2])], [w], **kwargs)


def identity_model(elem_type=TensorProto.FLOAT, shape=(None, 2)):
    return model([helper.make_node("Identity", ["X"], ["Y"])],
                 [helper.make_tensor_value_info("X", elem_type, list(shape))],
                 [helper.make_tensor_value_info("Y", elem_type, list(shape))])


def long_model(steps=400, size=256):
    """A chain of `steps` MatMuls of size x size matrices: long enough to stop in the middle."""
    w = numpy_helper.from_array(np.full((size, size), 1.0 / size, np.float32), "W")
    nodes, prev = [], "X"
    for i in range(steps):
        nodes.append(helper.make_node("MatMul", [prev, "W"], [f"h{i}"], name=f"matmul_{i}"))
        prev = f"h{i}"
    nodes.append(helper.make_node("Identity", [prev], ["Y"]))
    return model(nodes, [helper.make_tensor_value_info("X", TensorProto.FLOAT, [size, size])],
                 [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [size, size])], [w])
