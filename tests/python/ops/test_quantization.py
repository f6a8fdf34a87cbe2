"""CPU quantization kernels (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
QLinearMatMul, QLinearConv, ConvInteger, DeformConv) against the ONNX reference implementation."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import graft

RNG = np.random.default_rng(0)
ERRORS = (graft.Fail, graft.InvalidArgument, graft.NotImplemented)


def make_model(op, inputs, attrs=None, opset=21, n_outputs=1):
    """A one-node model over `inputs` (name -> array; None is an omitted optional input) with
    output types from ONNX shape inference."""
    node = helper.make_node(op, [n if v is not None else "" for n, v in inputs.items()],
                            [f"y{i}" for i in range(n_outputs)], **(attrs or {}))
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
        for n, v in inputs.items() if v is not None]
    outputs = [helper.make_empty_tensor_value_info(f"y{i}") for i in range(n_outputs)]
    model = helper.make_model(helper.make_graph([node], "g", graph_inputs, outputs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    inferred = onnx.shape_inference.infer_shapes(model)
    first = next(v for v in inputs.values() if v is not None)
    for out, found in zip(model.graph.output, inferred.graph.output):
        if found.type.WhichOneof("value") is None:  # inference rejected the node
            found = helper.make_tensor_value_info(
                found.name, helper.np_dtype_to_tensor_dtype(first.dtype), None)
        out.CopyFrom(found)
    return model


def run_graft(model, inputs):
    feeds = {k: v for k, v in inputs.items() if v is not None}
    return graft.InferenceSession(model.SerializeToString()).run(None, feeds)


def run_reference(model, inputs):
    feeds = {k: v for k, v in inputs.items() if v is not None}
    return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]


def assert_same(actual, expected, tol=0.0):
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if tol:
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(actual.astype(np.float64), expected.astype(np.float64))


def check(op, inputs, attrs=None, opset=21, n_outputs=1, tol=0.0, ref_opset=None):
    """Runs the op at `opset` through graft and at `ref_opset` (default `opset`) through the
    reference, for versions the reference lacks."""
    model = make_model(op, inputs, attrs, opset, n_outputs)
    ref_model = make_model(op, inputs, attrs, ref_opset, n_outputs) if ref_opset else model
    actual, expected = run_graft(model, inputs), run_reference(ref_model, inputs)
    for a, e in zip(actual, expected):
        assert_same(a, e, tol)
    return actual


def ints(shape, dtype, low=None, high=None):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else ml_dtypes.iinfo(dtype)
    low = info.min if low is None else low
    high = info.max if high is None else high
    return RNG.integers(low, high + 1, size=shape).astype(dtype)


def floats(shape, dtype=np.float32, scale=4.0):
    return (RNG.standard_normal(shape) * scale).astype(dtype)


# --- QuantizeLinear / DequantizeLinear --------------------------------------------------------

INT_TYPES = [np.uint8, np.int8, np.uint16, np.int16, ml_dtypes.int4, ml_dtypes.uint4,
             ml_dtypes.int2, ml_dtypes.uint2]
FLOAT8_TYPES = [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2,
                ml_dtypes.float8_e5m2fnuz, ml_dtypes.float4_e2m1fn]


def zero_point(shape, dtype):
    if dtype in FLOAT8_TYPES:
        return np.zeros(shape, dtype)
    info = ml_dtypes.iinfo(dtype)
    return RNG.integers(info.min // 2, info.max // 2 + 1, size=shape).astype(dtype)


@pytest.mark.parametrize("qtype", INT_TYPES + FLOAT8_TYPES)
@pytest.mark.parametrize("mode", ["tensor", "axis", "blocked", "blocked_last"])
@pytest.mark.parametrize("s_dtype", [np.float32, np.float16])
def test_quantize_dequantize(qtype, mode, s_dtype):
    x = floats((3, 4, 5))
    shape, attrs = {"tensor": ((), {}), "axis": ((4,), {"axis": 1}),
                    "blocked": ((3, 2, 5), {"axis": 1, "block_size": 3}),
                    "blocked_last": ((3, 4, 3), {"axis": -1, "block_size": 2})}[mode]
    scale = (RNG.uniform(0.05, 1.0, size=shape)).astype(s_dtype)
    zp = zero_point(shape, qtype)
    y = check("QuantizeLinear", {"x": x, "s": scale, "z": zp}, attrs, opset=25)[0]
    check("DequantizeLinear", {"x": y, "s": scale, "z": zp}, attrs, opset=25)


@pytest.mark.parametrize("x_dtype,s_dtype", [(np.float16, np.float16),
                                             (ml_dtypes.bfloat16, ml_dtypes.bfloat16),
                                             (np.float32, np.float16), (np.int32, np.float32)])
def test_quantize_input_types(x_dtype, s_dtype):
    x = floats((2, 6), np.float32, 40.0).astype(x_dtype)
    scale = np.array([0.5, 0.25, 2.0, 1.5, 3.0, 0.125], dtype=s_dtype)
    check("QuantizeLinear", {"x": x, "s": scale, "z": zero_point((6,), np.int8)}, {"axis": -1},
          opset=23)


@pytest.mark.parametrize("s_dtype", [np.float16, ml_dtypes.bfloat16])
def test_dequantize_scale_types(s_dtype):
    x = ints((4, 3), np.uint8)
    scale = np.array([0.5, 0.25, 2.0], dtype=s_dtype)
    check("DequantizeLinear", {"x": x, "s": scale, "z": zero_point((3,), np.uint8)},
          {"axis": 1}, opset=21)
    check("DequantizeLinear", {"x": x, "s": scale}, {"axis": 1, "output_dtype": TensorProto.FLOAT},
          opset=23)


def test_quantize_rounding_and_saturation():
    # Ties round to even; values past the range saturate.
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 300.0, -300.0, 1e5, -1e5], np.float32)
    for zp in (np.uint8(0), np.int8(0), np.uint8(10)):
        check("QuantizeLinear", {"x": x, "s": np.float32(1.0), "z": zp}, opset=13)
    # Beyond int32 the reference's intermediate cast overflows; the spec saturates.
    big = np.array([1e10, -1e10, np.inf, -np.inf], np.float32)
    inputs = {"x": big, "s": np.float32(1.0), "z": np.int8(0)}
    actual = run_graft(make_model("QuantizeLinear", inputs, opset=13), inputs)[0]
    np.testing.assert_array_equal(actual, np.array([127, -128, 127, -128], np.int8))


@pytest.mark.parametrize("qtype", [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2])
def test_quantize_float8_no_saturate(qtype):
    x = np.array([0.0, 1.0, -3.5, 1e6, -1e6, 100000.0], np.float32)
    check("QuantizeLinear", {"x": x, "s": np.float32(2.0), "z": np.zeros((), qtype)},
          {"saturate": 0}, opset=19)


@pytest.mark.parametrize("output_dtype", [TensorProto.INT8, TensorProto.UINT16, TensorProto.INT4,
                                          TensorProto.FLOAT8E4M3FN])
def test_quantize_output_dtype(output_dtype):
    check("QuantizeLinear", {"x": floats((2, 3)), "s": np.float32(0.3)},
          {"output_dtype": output_dtype}, opset=21)


@pytest.mark.parametrize("opset", [10, 13, 19])
def test_quantize_old_opsets(opset):
    # The reference has no DequantizeLinear before opset 19: compare with its opset 19 kernel.
    x = floats((2, 3, 4))
    check("QuantizeLinear", {"x": x, "s": np.float32(0.2), "z": np.uint8(128)}, opset=opset)
    check("QuantizeLinear", {"x": x, "s": np.float32(0.2)}, opset=opset)
    q = ints((2, 3, 4), np.int8)
    check("DequantizeLinear", {"x": q, "s": np.float32(0.2), "z": np.int8(-3)}, opset=opset,
          ref_opset=19)
    check("DequantizeLinear", {"x": ints((5,), np.int32, -1000, 1000), "s": np.float32(0.5)},
          opset=opset, ref_opset=19)
    if opset >= 13:
        s = np.array([0.1, 0.2, 0.3], np.float32)
        check("QuantizeLinear", {"x": x, "s": s, "z": np.array([0, 5, 9], np.uint8)}, opset=opset)
        check("DequantizeLinear", {"x": q, "s": s}, opset=opset, ref_opset=19)


def test_quantize_precision():
    x = floats((8,), np.float32, 100.0)
    check("QuantizeLinear", {"x": x, "s": np.float32(0.37), "z": np.int16(0)},
          {"precision": TensorProto.FLOAT16}, opset=23)


def test_quantize_int32_input_with_precision():
    x = ints((3, 4), np.int32, -5000, 5000)
    check("QuantizeLinear", {"x": x, "s": np.float32(7.3), "z": np.int16(3)},
          {"precision": TensorProto.FLOAT}, opset=23)
    check("QuantizeLinear", {"x": x, "s": np.float32(7.3), "z": np.int16(3)}, opset=23)


def test_dequantize_e8m0_scale():
    x = ints((2, 4), np.int8)
    scale = np.array([0.25, 1.0, 8.0, 0.5], np.float32).astype(ml_dtypes.float8_e8m0fnu)
    inputs = {"x": x, "s": scale}
    actual = run_graft(make_model("DequantizeLinear", inputs, {"axis": 1, "output_dtype": 1},
                                  opset=25), inputs)[0]
    np.testing.assert_array_equal(actual, x.astype(np.float32) * scale.astype(np.float32))


def test_dynamic_quantize_linear():
    for x in (floats((3, 4)), np.abs(floats((5,))), -np.abs(floats((2, 2))),
              np.zeros((3,), np.float32)):
        check("DynamicQuantizeLinear", {"x": x}, n_outputs=3, opset=11)


def graft_only(op, inputs, attrs=None, opset=21):
    """Runs the op through graft alone, for inputs the reference would reject too."""
    return run_graft(make_model(op, inputs, attrs, opset), inputs)


def test_quantize_errors():
    x = floats((2, 3))
    with pytest.raises(ERRORS, match="scale"):  # the scale does not fit axis 1
        graft_only("QuantizeLinear", {"x": x, "s": np.ones(4, np.float32)})
    with pytest.raises(ERRORS, match="output_dtype"):  # zero point and output_dtype disagree
        graft_only("QuantizeLinear", {"x": x, "s": np.float32(1), "z": np.uint8(0)},
                   {"output_dtype": TensorProto.INT8})
    with pytest.raises(ERRORS, match="blocked"):  # a blocked scale of the wrong shape
        graft_only("QuantizeLinear", {"x": floats((4, 6)), "s": np.ones((4, 2), np.float32)},
                   {"axis": 1, "block_size": 2})
    with pytest.raises(ERRORS, match="x_zero_point"):  # zero point of another type
        graft_only("DequantizeLinear", {"x": ints((3,), np.int8), "s": np.float32(1),
                                        "z": np.uint8(0)})


# --- QLinearMatMul / QLinearConv / ConvInteger ------------------------------------------------

@pytest.mark.parametrize("a_dtype,b_dtype,y_dtype", [(np.uint8, np.uint8, np.uint8),
                                                     (np.int8, np.int8, np.int8),
                                                     (np.uint8, np.int8, np.uint8)])
@pytest.mark.parametrize("s_dtype", [np.float32, np.float16])
@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3, 40), (1, 40, 6)),
                                    ((4, 600), (600, 3)), ((5,), (5, 2))])
def test_qlinear_matmul(a_dtype, b_dtype, y_dtype, s_dtype, shapes):
    a, b = ints(shapes[0], a_dtype), ints(shapes[1], b_dtype)
    inputs = {"a": a, "sa": s_dtype(0.02), "za": zero_point((), a_dtype),
              "b": b, "sb": s_dtype(0.03), "zb": zero_point((), b_dtype),
              "sy": s_dtype(0.5), "zy": zero_point((), y_dtype)}
    check("QLinearMatMul", inputs, opset=21 if s_dtype != np.float32 else 10)


def test_qlinear_matmul_per_row_column():
    a, b = ints((3, 4), np.uint8), ints((4, 5), np.uint8)
    inputs = {"a": a, "sa": RNG.uniform(0.01, 0.1, (3, 1)).astype(np.float32),
              "za": ints((3, 1), np.uint8, 100, 150), "b": b,
              "sb": RNG.uniform(0.01, 0.1, (1, 5)).astype(np.float32),
              "zb": ints((1, 5), np.uint8, 100, 150), "sy": np.float32(0.2), "zy": np.uint8(128)}
    check("QLinearMatMul", inputs, opset=21)


def test_qlinear_matmul_float8():
    # The reference casts float8 to int32; the spec dequantizes, multiplies and requantizes.
    f8 = ml_dtypes.float8_e4m3fn
    a, b = floats((3, 4), np.float32, 2.0).astype(f8), floats((4, 5), np.float32, 2.0).astype(f8)
    zero = np.zeros((), f8)
    inputs = {"a": a, "sa": np.float32(0.5), "za": zero, "b": b, "sb": np.float32(2.0),
              "zb": zero, "sy": np.float32(0.25), "zy": zero}
    actual = run_graft(make_model("QLinearMatMul", inputs, opset=21), inputs)[0]
    real = (a.astype(np.float32) @ b.astype(np.float32)) * (0.5 * 2.0 / 0.25)
    expected = onnx.numpy_helper.saturate_cast(real, f8)
    assert_same(actual, expected)


@pytest.mark.parametrize("x_dtype,w_dtype", [(np.uint8, np.uint8), (np.int8, np.int8),
                                             (np.uint8, np.int8)])
@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((1, 3, 7, 7), (4, 3, 3, 3), {}),
    ((2, 4, 6, 5), (6, 2, 3, 2), {"group": 2, "pads": [1, 0, 1, 1], "strides": [2, 1]}),
    ((1, 2, 9), (3, 2, 3), {"dilations": [2], "pads": [1, 1]}),
    ((1, 4, 5, 5), (2, 4, 1, 1), {}),
    ((1, 3, 6, 6), (2, 3, 3, 3), {"auto_pad": "SAME_UPPER"}),
])
def test_conv_integer_and_qlinear_conv(x_dtype, w_dtype, x_shape, w_shape, attrs):
    x, w = ints(x_shape, x_dtype), ints(w_shape, w_dtype)
    check("ConvInteger", {"x": x, "w": w, "zx": zero_point((), x_dtype),
                          "zw": zero_point((), w_dtype)}, attrs, opset=10)
    check("ConvInteger", {"x": x, "w": w}, attrs, opset=10)
    m = w_shape[0]
    inputs = {"x": x, "sx": np.float32(0.05), "zx": zero_point((), x_dtype), "w": w,
              "sw": np.float32(0.02), "zw": zero_point((), w_dtype), "sy": np.float32(0.7),
              "zy": zero_point((), x_dtype), "b": ints((m,), np.int32, -500, 500)}
    check("QLinearConv", inputs, attrs, opset=10)
    if len(x_shape) == 4:  # the reference handles per-channel scales in 2-D only
        inputs["sw"] = RNG.uniform(0.01, 0.05, (m,)).astype(np.float32)
        inputs["zw"] = np.zeros((m,), w_dtype)
        check("QLinearConv", inputs, attrs, opset=10)


def test_integer_conv_errors():
    with pytest.raises(ERRORS, match="channels"):
        graft_only("ConvInteger", {"x": ints((1, 4, 5, 5), np.uint8),
                                   "w": ints((2, 3, 3, 3), np.uint8)}, opset=10)
    inputs = {"a": ints((3, 4), np.uint8), "sa": np.float32(1), "za": np.uint8(0),
              "b": ints((5, 6), np.uint8), "sb": np.float32(1), "zb": np.uint8(0),
              "sy": np.float32(1), "zy": np.uint8(0)}
    with pytest.raises(ERRORS, match="inner"):
        graft_only("QLinearMatMul", inputs, opset=10)
    with pytest.raises(ERRORS, match="w_scale"):  # per-channel scale of the wrong length
        graft_only("QLinearConv", {"x": ints((1, 2, 4, 4), np.uint8), "sx": np.float32(1),
                                   "zx": np.uint8(0), "w": ints((3, 2, 2, 2), np.uint8),
                                   "sw": np.ones(2, np.float32), "zw": np.uint8(0),
                                   "sy": np.float32(1), "zy": np.uint8(0)}, opset=10)


# --- DeformConv -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-4), (np.float64, 1e-5),
                                       (np.float16, 2e-2)])
@pytest.mark.parametrize("attrs,x_shape,w_shape,offset_group", [
    ({}, (1, 2, 5, 5), (3, 2, 3, 3), 1),
    ({"pads": [1, 1, 1, 1], "strides": [2, 1], "group": 2}, (2, 4, 6, 5), (4, 2, 3, 2), 2),
    ({"dilations": [2, 1], "group": 2}, (1, 4, 7, 6), (2, 2, 2, 3), 1),
])
def test_deform_conv(dtype, tol, attrs, x_shape, w_shape, offset_group):
    n = x_shape[0]
    kh, kw = w_shape[2:]
    sh, sw = attrs.get("strides", [1, 1])
    dh, dw = attrs.get("dilations", [1, 1])
    pads = attrs.get("pads", [0, 0, 0, 0])
    oh = (x_shape[2] + pads[0] + pads[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (x_shape[3] + pads[1] + pads[3] - (kw - 1) * dw - 1) // sw + 1
    attrs = {**attrs, "offset_group": offset_group}
    inputs = {"x": floats(x_shape, dtype, 1.0), "w": floats(w_shape, dtype, 1.0),
              "offset": floats((n, offset_group * kh * kw * 2, oh, ow), dtype, 1.5),
              "b": floats((w_shape[0],), dtype, 1.0),
              "mask": RNG.uniform(0, 1, (n, offset_group * kh * kw, oh, ow)).astype(dtype)}
    check("DeformConv", inputs, attrs, opset=19, tol=tol)
    check("DeformConv", {**inputs, "b": None, "mask": None}, attrs, opset=19, tol=tol)


@pytest.mark.parametrize("x_shape,w_shape", [((1, 2, 9), (3, 2, 3)), ((1, 2, 4, 5, 3), (2, 2, 2, 3, 2))])
def test_deform_conv_zero_offset_is_conv(x_shape, w_shape):
    # The reference covers 2-D only; with zero offsets DeformConv is a plain Conv.
    x, w = floats(x_shape, np.float32, 1.0), floats(w_shape, np.float32, 1.0)
    out = [d - k + 1 for d, k in zip(x_shape[2:], w_shape[2:])]
    k = int(np.prod(w_shape[2:]))
    offset = np.zeros((1, k * len(out), *out), np.float32)
    actual = run_graft(make_model("DeformConv", {"x": x, "w": w, "o": offset}, opset=22),
                       {"x": x, "w": w, "o": offset})[0]
    expected = run_reference(make_model("Conv", {"x": x, "w": w}), {"x": x, "w": w})[0]
    assert_same(actual, expected, 1e-4)


def test_deform_conv_errors():
    x, w = floats((1, 2, 5, 5)), floats((3, 2, 3, 3))
    with pytest.raises(ERRORS, match="offset"):  # the output is 3x3, the offset 2x2
        graft_only("DeformConv", {"x": x, "w": w, "o": floats((1, 18, 2, 2))}, opset=19)
    with pytest.raises(ERRORS, match="offset_group"):
        graft_only("DeformConv", {"x": x, "w": w, "o": floats((1, 54, 3, 3))},
                   {"offset_group": 3}, opset=19)
