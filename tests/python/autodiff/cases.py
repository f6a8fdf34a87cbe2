"""Gradient-check cases, one list per (domain, op) with a gradient rule. Every registered rule
must have an entry here: test_gradient_rules fails for a rule without one."""

from __future__ import annotations

import numpy as np

from gradcheck import Case

CASES: dict[tuple[str, str], list[Case]] = {}


def add(*cases: Case) -> None:
    for c in cases:
        CASES.setdefault((c.domain, c.op), []).append(c)


# Broadcasting arithmetic.
for op in ("Add", "Sub", "Mul", "Div"):
    add(Case(op, {"a": (3, 4), "b": (3, 4)}, label="same shape"),
        Case(op, {"a": (2, 3, 4), "b": (4,)}, label="broadcast trailing"),
        Case(op, {"a": (3, 1), "b": (1, 4)}, label="broadcast both"))
add(Case("Neg", {"x": (3, 4)}), Case("Identity", {"x": (2, 5)}))
add(Case("Relu", {"x": (4, 5)}, data=lambda rng, s: rng.choice([-1, 1], s) * rng.uniform(0.1, 2, s)))
add(Case("Sum", {"a": (3, 4), "b": (4,), "c": (3, 1)}, label="three inputs"))
# Linear algebra.
add(Case("MatMul", {"a": (3, 4), "b": (4, 5)}, label="2-D"),
    Case("MatMul", {"a": (2, 3, 4), "b": (4, 5)}, label="batched A, shared B"),
    Case("MatMul", {"a": (2, 1, 3, 4), "b": (3, 4, 2)}, label="broadcast batches"),
    Case("MatMul", {"a": (4,), "b": (4, 3)}, label="1-D A"),
    Case("MatMul", {"a": (2, 3, 4), "b": (4,)}, label="1-D B"))
for ta in (0, 1):
    for tb in (0, 1):
        a = (4, 3) if ta else (3, 4)
        b = (5, 4) if tb else (4, 5)
        add(Case("Gemm", {"a": a, "b": b, "c": (5,)}, {"transA": ta, "transB": tb, "alpha": 0.5, "beta": 2.0},
                 label=f"transA={ta} transB={tb}"))
add(Case("Gemm", {"a": (3, 4), "b": (4, 5)}, label="no C"))
# Reductions.
for op in ("ReduceSum", "ReduceMean"):
    axes_input = 13 if op == "ReduceSum" else 18
    add(Case(op, {"x": (3, 4, 5), "axes": np.array([1], np.int64)}, {"keepdims": 0}, label="one axis"),
        Case(op, {"x": (3, 4, 5), "axes": np.array([0, -1], np.int64)}, {"keepdims": 1}, label="two axes kept"),
        Case(op, {"x": (3, 4)}, {"keepdims": 0}, label="all axes"),
        Case(op, {"x": (3, 4, 5)}, {"keepdims": 1, "axes": [2]}, opset=axes_input - 1, label="axes attribute"))

# Cases kept next to each family of rules.
import cases_elementwise  # noqa: E402
import cases_loop  # noqa: E402
import cases_nn  # noqa: E402
import cases_rnn  # noqa: E402
import cases_tensor  # noqa: E402

add(*cases_elementwise.CASES, *cases_tensor.CASES, *cases_nn.CASES, *cases_rnn.CASES, *cases_loop.CASES)

# Control flow: If differentiates each branch with respect to the outer values it reads.
def _branch(name, nodes):
    from onnx import TensorProto, helper

    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info("out", TensorProto.DOUBLE, None)])


def _if_case(cond: bool) -> Case:
    from onnx import helper

    then_branch = _branch("then", [helper.make_node("Mul", ["a", "b"], ["out"])])
    else_branch = _branch("else", [helper.make_node("Mul", ["a", "a"], ["sq"]),
                                   helper.make_node("Add", ["sq", "c"], ["out"])])
    return Case("If", {"cond": np.array(cond), "a": (3, 4), "b": (4,), "c": (3, 4)},
                {"then_branch": then_branch, "else_branch": else_branch}, node_inputs=["cond"],
                label=f"cond={cond}")


add(_if_case(True), _if_case(False))
