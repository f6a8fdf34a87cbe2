"""CPU reduction kernels (Reduce* and ArgMax/ArgMin) against the ONNX reference implementation."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import graft

RNG = np.random.default_rng(0)
ERRORS = (graft.Fail, graft.InvalidArgument, graft.NotImplemented)
REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]
FLOAT_ONLY = {"ReduceLogSum", "ReduceLogSumExp"}


def make_model(op, inputs, attrs, opset, infer=True):
    names = list(inputs)
    node = helper.make_node(op, [n if inputs[n] is not None else "" for n in names], ["y"],
                            **attrs)
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
        for n, v in inputs.items() if v is not None]
    x = inputs[names[0]]
    out = helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(x.dtype),
                                        [f"d{i}" for i in range(x.ndim)])
    graph = helper.make_graph([node], "g", graph_inputs, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    if infer:
        model.graph.output[0].CopyFrom(onnx.shape_inference.infer_shapes(model).graph.output[0])
    return model


def run_graft(op, inputs, attrs, opset):
    feeds = {k: v for k, v in inputs.items() if v is not None}
    model = make_model(op, inputs, attrs, opset, infer=False)
    return graft.InferenceSession(model.SerializeToString()).run(None, feeds)[0]


def check(op, inputs, attrs, opset, rtol=1e-5, atol=1e-5):
    feeds = {k: v for k, v in inputs.items() if v is not None}
    model = make_model(op, inputs, attrs, opset)
    expected = np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])
    if op == "ReduceSumSquare":  # the reference widens 32-bit integers as np.sum does
        expected = expected.astype(inputs["x"].dtype)
    actual = np.asarray(graft.InferenceSession(model.SerializeToString()).run(None, feeds)[0])
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


def reduce_inputs(op, x, axes, opset):
    """Inputs and attributes for `axes` (None: attribute or input omitted) at `opset`."""
    axes_as_input = opset >= (13 if op == "ReduceSum" else 18)
    if axes is None:
        return {"x": x}, {}
    if axes_as_input:
        return {"x": x, "axes": np.array(axes, np.int64)}, {}
    return {"x": x}, {"axes": axes}


def sample(dtype, shape, op):
    if np.issubdtype(dtype, np.integer):
        high = 4 if op == "ReduceProd" else 20
        low = 0 if np.issubdtype(dtype, np.unsignedinteger) else -high
        return RNG.integers(low, high, size=shape).astype(dtype)
    low = 0.1 if op == "ReduceLogSum" else -2.0
    return RNG.uniform(low, 2.0, size=shape).astype(dtype)


# LogSum and LogSumExp are exercised on float types only (their integer results truncate).
OP_DTYPES = [(op, dtype) for op in REDUCE_OPS
             for dtype in (np.float32, np.float64, np.float16, np.int32, np.int64, np.uint32)
             if not (op in FLOAT_ONLY and np.issubdtype(dtype, np.integer))]


@pytest.mark.parametrize("op,dtype", OP_DTYPES)
@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("axes,keepdims", [(None, 1), ([1], 0), ([0, 2], 1), ([-1, 0], 0),
                                           ([1, 2], 1), ([0, 1, 2], 0)])
def test_reduce(op, dtype, opset, axes, keepdims):
    inputs, attrs = reduce_inputs(op, sample(dtype, (3, 4, 5), op), axes, opset)
    tol = 5e-3 if dtype == np.float16 else 1e-5
    check(op, inputs, {**attrs, "keepdims": keepdims}, opset, rtol=tol, atol=tol)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.bool_])
def test_reduce_min_max_small_types(op, dtype):
    x = RNG.integers(0, 2 if dtype == np.bool_ else 100, size=(4, 6)).astype(dtype)
    check(op, {"x": x, "axes": np.array([1], np.int64)}, {"keepdims": 0}, 20)


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_noop_and_empty(op):
    x = sample(np.float32, (2, 3), op)
    empty_axes = np.array([], np.int64)
    opset = 18
    check(op, {"x": x, "axes": empty_axes}, {"noop_with_empty_axes": 1}, opset)
    check(op, {"x": x, "axes": empty_axes}, {"noop_with_empty_axes": 0}, opset)
    # Reducing over an axis of length 0 yields the reduction's identity.
    empty = np.zeros((2, 0, 3), np.float32)
    check(op, {"x": empty, "axes": np.array([1], np.int64)}, {"keepdims": 1}, opset)


def test_reduce_large_and_strided():
    x = RNG.standard_normal((64, 33, 17)).astype(np.float32)
    for axes in ([0], [1], [0, 2]):
        check("ReduceSum", {"x": x, "axes": np.array(axes, np.int64)}, {}, 18, 1e-4, 1e-4)
        check("ReduceMax", {"x": x, "axes": np.array(axes, np.int64)}, {}, 18)
    big = np.full((3, 2), 1000.0, np.float32)
    check("ReduceLogSumExp", {"x": big, "axes": np.array([1], np.int64)}, {}, 18)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.uint8, np.int64])
@pytest.mark.parametrize("axis,keepdims", [(0, 1), (1, 0), (-1, 1), (2, 0)])
@pytest.mark.parametrize("select_last", [0, 1])
def test_arg_min_max(op, dtype, axis, keepdims, select_last):
    x = RNG.integers(0, 4, size=(3, 4, 5)).astype(dtype)  # ties on purpose
    attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": select_last}
    check(op, {"x": x}, attrs, 13)
    if not select_last:
        check(op, {"x": x}, {"axis": axis, "keepdims": keepdims}, 11)


def test_reduction_errors():
    x = sample(np.float32, (2, 3), "ReduceSum")
    with pytest.raises(ERRORS):
        run_graft("ReduceSum", {"x": x, "axes": np.array([2], np.int64)}, {}, 18)
    with pytest.raises(ERRORS):
        run_graft("ReduceMean", {"x": x}, {"axes": [-3]}, 13)
    with pytest.raises(ERRORS):
        run_graft("ArgMax", {"x": x}, {"axis": 5}, 13)
    with pytest.raises(ERRORS):
        run_graft("ArgMin", {"x": np.zeros((2, 0), np.float32)}, {"axis": 1}, 13)
