"""Gradient-check cases for the rules in autodiff/rules/ (tensor ops)."""

from __future__ import annotations

import numpy as np

from gradcheck import Case

CASES: list[Case] = []


def i64(*values) -> np.ndarray:
    return np.array(values, np.int64)


def away_from_zero(rng, shape):
    return rng.choice([-1, 1], shape) * rng.uniform(0.2, 2, shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2, shape)


def with_zero(count):
    """Data with `count` exact zeros in each row (ReduceProd's special positions)."""
    def make(rng, shape):
        x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
        x.reshape(-1, shape[-1])[:, :count] = 0.0
        return x
    return make


# Reshape family: the gradient is reshaped back.
CASES += [
    Case("Reshape", {"x": (2, 3, 4), "shape": i64(4, -1)}, label="-1"),
    Case("Reshape", {"x": (2, 3, 4), "shape": i64(0, 12)}, label="0 copies"),
    Case("Reshape", {"x": (2, 3, 4), "shape": i64(6, 4)}, opset=13, label="opset 13"),
    Case("Flatten", {"x": (2, 3, 4)}, {"axis": 2}, label="axis 2"),
    Case("Flatten", {"x": (2, 3, 4)}, label="default axis"),
    Case("Squeeze", {"x": (2, 1, 3, 1), "axes": i64(1, -1)}, label="axes"),
    Case("Squeeze", {"x": (2, 1, 3)}, label="all ones"),
    Case("Unsqueeze", {"x": (2, 3), "axes": i64(0, -1)}, label="axes"),
    Case("Transpose", {"x": (2, 3, 4)}, {"perm": [1, 2, 0]}, label="perm"),
    Case("Transpose", {"x": (2, 3, 4)}, label="default reverses"),
]
# Concat / Split.
CASES += [
    Case("Concat", {"a": (2, 3), "b": (2, 1), "c": (2, 2)}, {"axis": 1}, label="axis 1"),
    Case("Concat", {"a": (2, 3, 2), "b": (1, 3, 2)}, {"axis": -3}, label="negative axis"),
    Case("Split", {"x": (6, 4), "split": i64(2, 4)}, {"axis": 0}, num_outputs=2, label="split input"),
    Case("Split", {"x": (3, 6)}, {"axis": -1, "num_outputs": 3}, num_outputs=3, label="num_outputs"),
    Case("Split", {"x": (4, 3)}, num_outputs=2, opset=13, label="even, opset 13"),
]
# Slice: steps, negative steps, clamped bounds, default axes.
CASES += [
    Case("Slice", {"x": (5, 6), "starts": i64(1, 0), "ends": i64(4, 6), "axes": i64(0, 1), "steps": i64(1, 2)},
         label="steps"),
    Case("Slice", {"x": (5, 6), "starts": i64(-1, 4), "ends": i64(-1000, 0), "axes": i64(1, 0),
                   "steps": i64(-2, -1)}, label="negative steps"),
    Case("Slice", {"x": (4, 5), "starts": i64(1, -3), "ends": i64(100, -1)}, label="default axes"),
]
# Gather family: repeated indices accumulate.
CASES += [
    Case("Gather", {"x": (5, 3), "idx": i64([0, 2], [4, 0])}, label="axis 0, repeated"),
    Case("Gather", {"x": (2, 4, 3), "idx": i64(-1, 0, -1, 2)}, {"axis": 1}, label="axis 1, negative"),
    Case("Gather", {"x": (4, 3), "idx": np.array(-2, np.int32)}, {"axis": -1}, label="scalar index"),
    Case("GatherElements", {"x": (3, 4), "idx": i64([0, 0], [3, 1], [2, -1])}, {"axis": 1}, label="axis 1"),
    Case("GatherElements", {"x": (3, 2), "idx": i64([0, 1], [0, 0], [2, 1], [1, 1])}, label="axis 0"),
    Case("GatherND", {"x": (3, 4, 2), "idx": i64([0, 1], [2, -1], [0, 1])}, label="repeated tuples"),
    Case("GatherND", {"x": (3, 4), "idx": i64([[2]], [[0]])}, label="rows"),
    Case("GatherND", {"x": (2, 3, 4), "idx": i64([[1, 2], [1, 2]], [[0, 0], [2, 3]])}, {"batch_dims": 1},
         label="batch_dims 1"),
    Case("GatherND", {"x": (2, 2, 3, 2), "idx": i64([[[1], [1]], [[0], [2]]], [[[2], [0]], [[1], [1]]])},
         {"batch_dims": 2}, label="batch_dims 2"),
]
# Scatter family: data and updates.
CASES += [
    Case("ScatterElements", {"data": (3, 4), "idx": i64([1, 3], [0, 2], [2, 1]), "updates": (3, 2)}, {"axis": 1},
         label="none"),
    Case("ScatterElements", {"data": (3, 4), "idx": i64([1, 1], [0, 2]), "updates": (2, 2)},
         {"axis": 0, "reduction": "add"}, label="add"),
    Case("ScatterND", {"data": (4, 3), "idx": i64([1], [3]), "updates": (2, 3)}, label="rows"),
    Case("ScatterND", {"data": (4, 3), "idx": i64([1, 2], [1, 2], [0, 0]), "updates": (3,)},
         {"reduction": "add"}, label="add, repeated"),
    Case("ScatterND", {"data": (4, 3), "idx": i64([1], [3]), "updates": (2, 3)}, opset=13, label="opset 13"),
]
# Broadcasting copies: Expand, Tile.
CASES += [
    Case("Expand", {"x": (3, 1), "shape": i64(2, 3, 4)}, label="new and stretched axes"),
    Case("Expand", {"x": (2, 3), "shape": i64(3, 1, 1)}, label="shape smaller than input"),
    Case("Tile", {"x": (2, 3), "repeats": i64(2, 3)}),
    Case("Tile", {"x": (2, 1, 3), "repeats": i64(1, 4, 2)}, label="rank 3"),
]
# Pad (constant mode): positive and negative pads, axes input, differentiable constant.
CASES += [
    Case("Pad", {"x": (3, 4), "pads": i64(1, 0, 2, 1)}, label="grow"),
    Case("Pad", {"x": (3, 4), "pads": i64(1, -1, -1, 2), "value": ()}, label="crop and grow, constant"),
    Case("Pad", {"x": (2, 3, 4), "pads": i64(2, -1), "value": (), "axes": i64(-1)}, label="axes input"),
    Case("Pad", {"x": (3, 4), "pads": i64(0, 1, 1, 0)}, opset=13, label="opset 13"),
    Case("Pad", {"x": (3, 4), "pads": i64(2, 1, 1, 3)}, {"mode": "reflect"}, label="reflect"),
    Case("Pad", {"x": (3, 4), "pads": i64(2, 1, 1, 3)}, {"mode": "edge"}, label="edge"),
    Case("Pad", {"x": (3, 4), "pads": i64(1, 2, 2, 1)}, {"mode": "wrap"}, opset=19, label="wrap"),
]
# Einsum.
CASES += [
    Case("Einsum", {"a": (3, 4), "b": (4, 5)}, {"equation": "ij,jk->ik"}, label="matmul"),
    Case("Einsum", {"a": (2, 3, 4), "b": (2, 4, 5)}, {"equation": "bij, bjk -> bik"}, label="batched, spaces"),
    Case("Einsum", {"a": (3, 4), "b": (5,)}, {"equation": "ij,k->i"}, label="summed-only indices"),
    Case("Einsum", {"a": (3,), "b": (4,)}, {"equation": "i,j->ji"}, label="outer"),
    Case("Einsum", {"a": (3, 4), "b": (3, 4)}, {"equation": "ij,ij->"}, label="scalar output"),
    Case("Einsum", {"a": (2, 3, 4), "b": (2, 4, 5)}, {"equation": "...ij,...jk->...ik"}, label="ellipsis batch"),
    Case("Einsum", {"a": (2, 3, 4), "b": (4, 5)}, {"equation": "...ij,jk"}, label="ellipsis, implicit output"),
    Case("Einsum", {"a": (3, 2, 4), "b": (3, 2, 4)}, {"equation": "i...,i...->..."}, label="ellipsis after an index"),
    Case("Einsum", {"a": (3, 4), "b": (4, 2)}, {"equation": "ij,jk"}, label="implicit output"),
    Case("Einsum", {"a": (3, 4), "b": (4,), "c": (4, 2)}, {"equation": "ij,j,jk->ik"}, label="three operands"),
    Case("Einsum", {"a": (3, 4)}, {"equation": "ij->j"}, label="one operand"),
]
# CumSum.
CASES += [Case("CumSum", {"x": (3, 4), "axis": np.array(ax, np.int64)}, {"exclusive": ex, "reverse": rev},
               label=f"axis {ax} exclusive {ex} reverse {rev}")
          for ax, ex, rev in ((1, 0, 0), (0, 1, 0), (-1, 0, 1), (1, 1, 1))]
CASES.append(Case("CumSum", {"x": (5,), "axis": np.array(0, np.int32)}, opset=13, label="opset 13"))
# Dropout: inference is an identity; training uses the mask (ratio 0 keeps the run deterministic
# across runtimes).
CASES += [
    Case("Dropout", {"x": (3, 4)}, label="inference"),
    Case("Dropout", {"x": (3, 4), "ratio": np.array(0.5), "training": np.array(False)}, num_outputs=2,
         label="training_mode false"),
    Case("Dropout", {"x": (3, 4), "ratio": np.array(0.0), "training": np.array(True)}, num_outputs=2,
         label="training, ratio 0"),
]

# Reductions: axes as input (opset 18) or attribute (13), keepdims 0/1, all axes.
_REDUCE_DATA = {
    "ReduceMax": None, "ReduceMin": None, "ReduceProd": None, "ReduceL1": away_from_zero,
    "ReduceL2": None, "ReduceLogSumExp": None, "ReduceLogSum": positive, "ReduceSumSquare": None,
}
for op, data in _REDUCE_DATA.items():
    CASES += [
        Case(op, {"x": (3, 4, 5), "axes": i64(1)}, {"keepdims": 0}, data=data, label="one axis"),
        Case(op, {"x": (3, 4, 5), "axes": i64(0, -1)}, {"keepdims": 1}, data=data, label="two axes kept"),
        Case(op, {"x": (3, 4)}, {"keepdims": 0}, data=data, label="all axes"),
        Case(op, {"x": (3, 4, 5)}, {"keepdims": 0, "axes": [2, 0]}, data=data, opset=13, label="axes attribute"),
        Case(op, {"x": (3, 4)}, {"keepdims": 1}, data=data, opset=13, label="all axes, opset 13"),
        Case(op, {"x": (2, 3)}, {"noop_with_empty_axes": 1}, data=data, label="noop"),
    ]
CASES += [
    Case("ReduceProd", {"x": (3, 4), "axes": i64(1)}, {"keepdims": 0}, data=with_zero(1), label="one zero a row"),
    Case("ReduceProd", {"x": (3, 4), "axes": i64(1)}, {"keepdims": 1}, data=with_zero(2), label="two zeros a row"),
]
