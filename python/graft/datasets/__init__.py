"""Small example models, as onnxruntime.datasets provides: get_example(name) returns the path of
"mul_1.onnx" (Y = X * W), "sigmoid.onnx" (Y = Sigmoid(X)) or "logreg_iris.onnx" (a one-vs-rest
logistic regression on the four iris features, scikit-learn's liblinear fit, with a ZipMap of
class probabilities). graft writes them the first time they are asked for, into
$XDG_CACHE_HOME/graft/examples (~/.cache/graft/examples), so no file ships or downloads."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np


def _mul_1():
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32), "W")
    graph = helper.make_graph([helper.make_node("Mul", ["X", "W"], ["Y"])], "mul_1",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 2])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 2])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="graft")


def _sigmoid():
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "sigmoid",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4, 5])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="graft")


# scikit-learn 1.9's OneVsRestClassifier(LogisticRegression(solver="liblinear")) fitted on the
# iris data (4 features, 3 classes), rounded to float32.
_IRIS_COEFFICIENTS = [0.41021713, 1.46416217, -2.26003266, -1.02103509,
                      0.4275087, -1.61211605, 0.5758173, -1.40617325,
                      -1.70751526, -1.53427768, 2.47096755, 2.55537041]
_IRIS_INTERCEPTS = [0.26421853, 1.09392467, -1.21470917]


def _logreg_iris():
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("LinearClassifier", ["float_input"], ["label", "scores"], domain="ai.onnx.ml",
                         classlabels_ints=[0, 1, 2], coefficients=_IRIS_COEFFICIENTS, intercepts=_IRIS_INTERCEPTS,
                         multi_class=0, post_transform="LOGISTIC"),
        helper.make_node("Normalizer", ["scores"], ["normalized"], domain="ai.onnx.ml", norm="L1"),
        helper.make_node("ZipMap", ["normalized"], ["probabilities"], domain="ai.onnx.ml", classlabels_int64s=[0, 1, 2]),
    ]
    probabilities = helper.make_value_info("probabilities", helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, None))))
    graph = helper.make_graph(nodes, "logreg_iris", [helper.make_tensor_value_info("float_input", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("label", TensorProto.INT64, [None]), probabilities])
    return helper.make_model(graph, producer_name="graft", opset_imports=[
        helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 1)])


_EXAMPLES: dict[str, Callable] = {"mul_1.onnx": _mul_1, "sigmoid.onnx": _sigmoid, "logreg_iris.onnx": _logreg_iris}


def _directory() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "graft", "examples")


def get_example(name: str) -> str:
    """The path of example model `name`, written on first use. Raises FileNotFoundError naming
    the examples there are for another name."""
    if name not in _EXAMPLES:
        raise FileNotFoundError(f"graft has no example '{name}' (it has {', '.join(sorted(_EXAMPLES))})")
    path = os.path.join(_directory(), name)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.{os.getpid()}.partial"
        with open(partial, "wb") as f:
            f.write(_EXAMPLES[name]().SerializeToString())
        os.replace(partial, path)
    return path
