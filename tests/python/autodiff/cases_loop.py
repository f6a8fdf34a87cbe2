"""Gradient-check cases for Loop and Scan: the bodies read outer weights besides their inputs."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from gradcheck import Case

D = TensorProto.DOUBLE


def _loop_case(trip_count: bool, opset: int = 18) -> Case:
    # h' = h * s + x W + iteration;  y = tanh(h'), stacked.  Without M, the body stops itself
    # after three iterations (cond' = iteration < 2).
    nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"]),
             helper.make_node("Mul", ["h_in", "s"], ["hs"]),
             helper.make_node("Add", ["hs", "xw"], ["pre"]),
             helper.make_node("Cast", ["iter"], ["iterf"], to=D),
             helper.make_node("Add", ["pre", "iterf"], ["h_out"]),
             helper.make_node("Tanh", ["h_out"], ["y"])]
    if trip_count:
        nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
    else:
        nodes += [helper.make_node("Constant", [], ["two"], value=helper.make_tensor("two", TensorProto.INT64, [], [2])),
                  helper.make_node("Less", ["iter", "two"], ["cond_out"])]
    body = helper.make_graph(
        nodes, "body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", D, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", D, None),
         helper.make_tensor_value_info("y", D, None)])
    return Case("Loop", {"M": np.array(3, np.int64), "cond": np.array(True), "h0": (2, 3), "x": (2, 3),
                         "W": (3, 3), "s": (3,)},
                {"body": body}, num_outputs=2, node_inputs=["M" if trip_count else "", "cond", "h0"],
                opset=opset, label=("M=3" if trip_count else "condition stops it") + f" opset {opset}")


def _loop_counter_case() -> Case:
    # An int64 carried counter k next to h: h' = h * s + x W * k;  k' = k + 1.
    one = helper.make_tensor("one", TensorProto.INT64, [], [1])
    body = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]),
         helper.make_node("Cast", ["k_in"], ["kf"], to=D),
         helper.make_node("Mul", ["xw", "kf"], ["xwk"]),
         helper.make_node("Mul", ["h_in", "s"], ["hs"]),
         helper.make_node("Add", ["hs", "xwk"], ["h_out"]),
         helper.make_node("Constant", [], ["one"], value=one),
         helper.make_node("Add", ["k_in", "one"], ["k_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", D, None),
         helper.make_tensor_value_info("k_in", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", D, None),
         helper.make_tensor_value_info("k_out", TensorProto.INT64, [])])
    return Case("Loop", {"M": np.array(4, np.int64), "cond": np.array(True), "h0": (2, 3), "k0": np.array(1, np.int64),
                         "x": (2, 3), "W": (3, 3), "s": (3,)},
                {"body": body}, num_outputs=2, node_inputs=["M", "cond", "h0", "k0"], label="int counter carried")


def _scan_case(label: str, x_shape=(4, 3), opset: int = 18, **attrs) -> Case:
    # s' = s + tanh(x_t W);  y_t = s' * x_t.
    body = helper.make_graph(
        [helper.make_node("MatMul", ["x_t", "W"], ["xw"]),
         helper.make_node("Tanh", ["xw"], ["th"]),
         helper.make_node("Add", ["s_in", "th"], ["s_out"]),
         helper.make_node("Mul", ["s_out", "x_t"], ["y"])],
        "body",
        [helper.make_tensor_value_info("s_in", D, [3]), helper.make_tensor_value_info("x_t", D, [3])],
        [helper.make_tensor_value_info("s_out", D, [3]), helper.make_tensor_value_info("y", D, [3])])
    return Case("Scan", {"state0": (3,), "x": x_shape, "W": (3, 3)}, {"body": body, "num_scan_inputs": 1, **attrs},
                num_outputs=2, node_inputs=["state0", "x"], opset=opset, label=label)


CASES: list[Case] = [
    _loop_case(True),
    _loop_case(False),
    _loop_case(True, opset=13),
    _loop_counter_case(),
    _scan_case("defaults"),
    _scan_case("opset 11", opset=11),
    _scan_case("reversed", scan_input_directions=[1], scan_output_directions=[1]),
    _scan_case("axis 1", x_shape=(3, 4), scan_input_axes=[1], scan_output_axes=[1]),
    _scan_case("axis -1 reversed input", x_shape=(3, 4), scan_input_axes=[-1], scan_input_directions=[1],
               scan_output_axes=[-1]),
]
