"""CPU elementwise kernels (unary, binary, variadic, Where, Clip, Cast) against the ONNX
reference implementation or NumPy."""

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


def make_model(op, inputs, attrs=None, opset=21, out_dtype=None, out_shape=None):
    """A one-node model over `inputs` (name -> array; None is an omitted optional input); the
    output's type is declared when `out_dtype` is given."""
    names = list(inputs)
    node = helper.make_node(op, [n if inputs[n] is not None else "" for n in names], ["y"],
                            **(attrs or {}))
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
        for n, v in inputs.items() if v is not None]
    if out_dtype is not None and out_shape is None:
        out_shape = list(next(v for v in inputs.values() if v is not None).shape)
    out = (helper.make_tensor_value_info("y", out_dtype, out_shape) if out_dtype is not None
           else helper.make_empty_tensor_value_info("y"))
    graph = helper.make_graph([node], "g", graph_inputs, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    if out_dtype is None:  # declare the output as ONNX infers it
        inferred = onnx.shape_inference.infer_shapes(model)
        model.graph.output[0].CopyFrom(inferred.graph.output[0])
    return model


def run_graft(model, inputs):
    feeds = {k: v for k, v in inputs.items() if v is not None}
    return graft.InferenceSession(model.SerializeToString()).run(None, feeds)[0]


def run_reference(model, inputs):
    feeds = {k: v for k, v in inputs.items() if v is not None}
    return np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.dtype.kind in "fV" or expected.dtype in (ml_dtypes.bfloat16,):
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


def check(op, inputs, attrs=None, opset=21, rtol=1e-5, atol=1e-6):
    expected = run_reference(make_model(op, inputs, attrs, opset), inputs)
    model = make_model(op, inputs, attrs, opset, helper.np_dtype_to_tensor_dtype(expected.dtype),
                       list(expected.shape))
    actual = run_graft(model, inputs)
    assert_close(actual, expected, rtol, atol)
    return actual


def tolerance(dtype):
    return {np.float16: (2e-3, 2e-3), ml_dtypes.bfloat16: (1e-2, 1e-2)}.get(dtype, (1e-5, 1e-6))


def rand(shape, dtype, low=-3.0, high=3.0):
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return RNG.integers(max(info.min, -50), min(info.max, 50), size=shape).astype(dtype)
    return RNG.uniform(low, high, size=shape).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Unary

FLOAT_UNARY = {
    "Reciprocal": (0.5, 3), "Sqrt": (0, 4), "Exp": (-3, 3), "Log": (0.1, 5), "Erf": (-2, 2),
    "Floor": (-5, 5), "Ceil": (-5, 5), "Round": (-5, 5), "Sin": (-3, 3), "Cos": (-3, 3),
    "Tan": (-1, 1), "Asin": (-0.9, 0.9), "Acos": (-0.9, 0.9), "Atan": (-3, 3), "Sinh": (-3, 3),
    "Cosh": (-3, 3), "Asinh": (-3, 3), "Acosh": (1.1, 5), "Atanh": (-0.9, 0.9), "Abs": (-3, 3),
    "Neg": (-3, 3), "Sign": (-3, 3), "Relu": (-3, 3), "Sigmoid": (-8, 8), "Tanh": (-3, 3),
    "Softplus": (-30, 30), "Softsign": (-3, 3), "HardSwish": (-5, 5), "Mish": (-5, 5),
}
OPSET = {"Mish": 22, "HardSwish": 22, "Softplus": 22, "Softsign": 22}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("op", sorted(FLOAT_UNARY))
def test_float_unary(op, dtype):
    low, high = FLOAT_UNARY[op]
    x = rand((3, 4, 5), dtype, low, high)
    if op == "Round":
        x[0, 0, :4] = np.array([0.5, 1.5, 2.5, -2.5], dtype)
    rtol, atol = tolerance(dtype)
    check(op, {"x": x}, opset=OPSET.get(op, 21), rtol=rtol, atol=atol)


@pytest.mark.parametrize("op", ["Exp", "Sigmoid", "Relu", "Floor"])
def test_bfloat16_unary(op):
    x = rand((2, 7), np.float32).astype(ml_dtypes.bfloat16)
    check(op, {"x": x}, rtol=1e-2, atol=1e-2)


# Neg and Relu are defined on signed types only.
INTEGER_UNARY = [(op, dtype) for op in ("Abs", "Neg", "Sign", "Relu", "BitwiseNot")
                 for dtype in (np.int8, np.int32, np.int64, np.uint8, np.uint64)
                 if not (op in ("Neg", "Relu") and np.dtype(dtype).kind == "u")]


@pytest.mark.parametrize("op,dtype", INTEGER_UNARY)
def test_integer_unary(op, dtype):
    check(op, {"x": rand((4, 5), dtype)})


def test_not_isnan_isinf():
    check("Not", {"x": RNG.integers(0, 2, (3, 4)).astype(bool)})
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, -2.0], np.float32)
    for dtype in (np.float32, np.float64, np.float16):
        check("IsNaN", {"x": x.astype(dtype)})
        for pos in (0, 1):
            for neg in (0, 1):
                check("IsInf", {"x": x.astype(dtype)},
                      {"detect_positive": pos, "detect_negative": neg})
    f8 = x.astype(ml_dtypes.float8_e5m2)
    np.testing.assert_array_equal(run_graft(make_model("IsInf", {"x": f8}), {"x": f8}),
                                  np.isinf(x))
    np.testing.assert_array_equal(run_graft(make_model("IsNaN", {"x": f8}), {"x": f8}),
                                  np.isnan(x))


ACTIVATIONS = [
    ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.3}), ("ThresholdedRelu", {"alpha": 0.5}),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("Elu", {"alpha": 0.7}), ("Selu", {}),
    ("Selu", {"alpha": 1.5, "gamma": 2.0}), ("Celu", {"alpha": 2.0}), ("Gelu", {}),
    ("Gelu", {"approximate": "tanh"}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("op,attrs", ACTIVATIONS)
def test_activation(op, attrs, dtype):
    rtol, atol = tolerance(dtype)
    check(op, {"x": rand((2, 3, 4), dtype)}, attrs, opset=22 if op != "Celu" else 12,
          rtol=rtol, atol=atol)


def test_relu_old_opsets():
    x = rand((3, 4), np.float32)
    for opset in (7, 13, 14):
        check("Relu", {"x": x}, opset=opset)


# ---------------------------------------------------------------------------------------------
# Binary

SHAPES = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)),
          ((), (3,)), ((5, 1, 1, 6), (1, 7, 1)), ((0, 3), (1, 3)), ((3, 1), (1, 0))]


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_arith_broadcast(op, shapes):
    a, b = rand(shapes[0], np.float32), rand(shapes[1], np.float32, 0.5, 2)
    check(op, {"a": a, "b": b})


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int8, np.int16, np.int32,
                                   np.int64, np.uint8, np.uint16, np.uint32, np.uint64])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_arith_types(op, dtype):
    a, b = rand((3, 4), dtype), rand((4,), dtype)
    if op == "Div" and np.dtype(dtype).kind in "iu":
        b[b == 0] = 3
    rtol, atol = tolerance(dtype)
    check(op, {"a": a, "b": b}, rtol=rtol, atol=atol)


def test_arith_bfloat16_and_older_opsets():
    a = rand((2, 3), np.float32).astype(ml_dtypes.bfloat16)
    check("Add", {"a": a, "b": a}, rtol=1e-2, atol=1e-2)
    x, y = rand((2, 3), np.float32), rand((3,), np.float32)
    for opset in (7, 13, 14):
        check("Mul", {"a": x, "b": y}, opset=opset)


def test_legacy_broadcast_opset6():
    a, b = rand((2, 3, 4), np.float32), rand((3,), np.float32)
    for op, f in (("Add", np.add), ("Mul", np.multiply), ("Pow", np.power)):
        inputs = {"a": np.abs(a) + 0.5, "b": b}
        model = make_model(op, inputs, {"broadcast": 1, "axis": 1}, opset=6,
                           out_dtype=TensorProto.FLOAT)
        np.testing.assert_allclose(run_graft(model, inputs),
                                   f(inputs["a"], b.reshape(3, 1)), rtol=1e-5)
    with pytest.raises(ERRORS, match="broadcast is 0"):
        inputs = {"a": a, "b": b}
        run_graft(make_model("Sub", inputs, opset=6, out_dtype=TensorProto.FLOAT), inputs)
    model = make_model("Cast", {"x": a}, {"to": "INT32"}, opset=1, out_dtype=TensorProto.INT32)
    np.testing.assert_array_equal(run_graft(model, {"x": a}), a.astype(np.int32))


def test_integer_division_edges():
    a = np.array([7, -7, 7, -7, np.iinfo(np.int32).min, 5], np.int32)
    b = np.array([2, 2, -2, -2, -1, 0], np.int32)
    y = run_graft(make_model("Div", {"a": a, "b": b}), {"a": a, "b": b})
    np.testing.assert_array_equal(y[:5], [3, -3, -3, 3, np.iinfo(np.int32).min])


def test_large_broadcast_parallel():
    a = rand((64, 1, 300), np.float32)
    b = rand((1, 50, 300), np.float32)
    y = run_graft(make_model("Add", {"a": a, "b": b}), {"a": a, "b": b})
    np.testing.assert_allclose(y, a + b, rtol=1e-6)
    c = rand((400000,), np.float32)
    y = run_graft(make_model("Mul", {"a": c, "b": c}), {"a": c, "b": c})
    np.testing.assert_allclose(y, c * c, rtol=1e-6)


@pytest.mark.parametrize("base,exponent", [
    (np.float32, np.float32), (np.float32, np.int64), (np.float64, np.int32),
    (np.float16, np.float32), (np.int32, np.int32), (np.int64, np.int64), (np.int32, np.float32)])
def test_pow(base, exponent):
    a = rand((3, 4), base, 0.5, 3) if np.dtype(base).kind == "f" else \
        RNG.integers(-4, 5, (3, 4)).astype(base)
    b = rand((4,), exponent, -2, 3) if np.dtype(exponent).kind == "f" else \
        RNG.integers(0, 4, (4,)).astype(exponent)
    rtol, atol = tolerance(base)
    check("Pow", {"a": a, "b": b}, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.float32,
                                   np.float64, np.float16])
@pytest.mark.parametrize("fmod", [0, 1])
def test_mod(dtype, fmod):
    a = rand((4, 5), dtype, -10, 10)
    b = rand((5,), dtype) if np.dtype(dtype).kind != "f" else rand((5,), dtype, 1, 4)
    if np.dtype(dtype).kind in "iu":
        b[b == 0] = 3
    if np.dtype(dtype).kind == "f":
        b[::2] *= -1
    rtol, atol = tolerance(dtype)
    check("Mod", {"a": a, "b": b}, {"fmod": fmod}, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bitshift(dtype, direction):
    x = RNG.integers(0, 200, (3, 4)).astype(dtype)
    s = RNG.integers(0, 8, (4,)).astype(dtype)
    check("BitShift", {"x": x, "s": s}, {"direction": direction})


def test_bitshift_signed_and_wide_shifts():
    x = np.array([-8, 8, -1, 5, 100], np.int32)
    s = np.array([1, 1, 40, 32, -1], np.int32)
    for direction, want in (("RIGHT", [-4, 4, -1, 0, 0]), ("LEFT", [-16, 16, 0, 0, 0])):
        model = make_model("BitShift", {"x": x, "s": s}, {"direction": direction}, opset=28)
        np.testing.assert_array_equal(run_graft(model, {"x": x, "s": s}), want)


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint64])
def test_bitwise(op, dtype):
    check(op, {"a": rand((2, 3, 4), dtype), "b": rand((3, 1), dtype)})


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logical(op):
    a = RNG.integers(0, 2, (3, 4)).astype(bool)
    b = RNG.integers(0, 2, (2, 1, 4)).astype(bool)
    check(op, {"a": a, "b": b})


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64, np.uint8, np.int16])
def test_comparison(op, dtype):
    a = rand((3, 4), dtype)
    b = a[1:2].copy()
    b[0, ::2] += dtype(1)
    check(op, {"a": a, "b": b})


def test_equal_string_and_bool():
    a = np.array([["a", "bc"], ["", "d"]], dtype=object)
    b = np.array(["a", "d"], dtype=object)
    model = make_model("Equal", {"a": a, "b": b})
    np.testing.assert_array_equal(run_graft(model, {"a": a, "b": b}),
                                  [[True, False], [False, True]])
    x = RNG.integers(0, 2, (4,)).astype(bool)
    check("Equal", {"a": x, "b": x[::-1].copy()})


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.int64])
def test_prelu(dtype):
    rtol, atol = tolerance(dtype)
    x = rand((2, 3, 4), dtype)
    check("PRelu", {"x": x, "slope": rand((4,), dtype, 0.1, 0.5)}, rtol=rtol, atol=atol)
    check("PRelu", {"x": x, "slope": rand((3, 1), dtype, 0.1, 0.5)}, rtol=rtol, atol=atol)


def test_prelu_channel_slope():
    # A 1-D slope matching exactly one dim of X, as the reference accepts.
    x, slope = rand((2, 3, 5), np.float32), rand((3,), np.float32)
    check("PRelu", {"x": x, "slope": slope})


# ---------------------------------------------------------------------------------------------
# Variadic, Where, Clip


@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_variadic(op, n):
    shapes = [(3, 1, 4), (2, 1), (4,)][:n]
    inputs = {f"x{i}": rand(s, np.float32) for i, s in enumerate(shapes)}
    if op != "Mean":
        check(op, inputs)
        return
    # The reference's Mean adds in place, which cannot broadcast; compare with NumPy.
    y = run_graft(make_model(op, inputs), inputs)
    expected = sum(np.broadcast_arrays(*inputs.values())) / n
    np.testing.assert_allclose(y, expected.astype(np.float32), rtol=1e-6)


def test_variadic_types_and_nan():
    for op in ("Max", "Min"):
        for dtype in (np.int8, np.uint32, np.int64, np.float16):
            check(op, {"a": rand((3, 4), dtype), "b": rand((4,), dtype)})
        a = np.array([1.0, np.nan, 3.0], np.float32)
        b = np.array([np.nan, 2.0, 1.0], np.float32)
        check(op, {"a": a, "b": b})
    for op in ("Sum", "Mean"):
        check(op, {"a": rand((3, 4), np.float64), "b": rand((4,), np.float64)}, opset=8)
        check(op, {"a": rand((3, 4), np.float16), "b": rand((4,), np.float16)}, rtol=2e-3,
              atol=2e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8, np.float16, bool])
def test_where(dtype):
    cond = RNG.integers(0, 2, (3, 1, 4)).astype(bool)
    check("Where", {"c": cond, "a": rand((2, 4), np.float32).astype(dtype),
                    "b": rand((1,), np.float32).astype(dtype)})


def test_where_string():
    cond = np.array([[True, False], [False, True]])
    inputs = {"c": cond, "a": np.array(["a", "b"], dtype=object),
              "b": np.array([["c"], ["d"]], dtype=object)}
    np.testing.assert_array_equal(run_graft(make_model("Where", inputs), inputs),
                                  [["a", "c"], ["d", "b"]])


def test_clip():
    x = rand((3, 4), np.float32)
    check("Clip", {"x": x}, {"min": -1.0, "max": 0.5}, opset=6)
    check("Clip", {"x": x}, {}, opset=6)
    lo, hi = np.array(-1.0, np.float32), np.array(0.5, np.float32)
    check("Clip", {"x": x, "lo": lo, "hi": hi}, opset=11)
    check("Clip", {"x": x, "lo": None, "hi": hi}, opset=13)
    check("Clip", {"x": x, "lo": lo}, opset=13)
    for dtype in (np.int8, np.int64, np.uint16, np.float16):
        xi = rand((3, 4), dtype)
        check("Clip", {"x": xi, "lo": np.array(2, dtype), "hi": np.array(20, dtype)}, opset=13)


# ---------------------------------------------------------------------------------------------
# Cast

NUMBERS = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16, np.int8, np.int16, np.int32,
           np.int64, np.uint8, np.uint16, np.uint32, np.uint64, bool]


def cast_model(x, to, attrs=None, opset=21, like=False):
    """A Cast (or CastLike) of `x` to the NumPy dtype `to`, and its inputs."""
    to_code = helper.np_dtype_to_tensor_dtype(np.dtype(to))
    if like:
        inputs = {"x": x, "t": np.zeros((1,), to)}
        return make_model("CastLike", inputs, attrs, opset, to_code), inputs
    inputs = {"x": x}
    return make_model("Cast", inputs, {"to": to_code, **(attrs or {})}, opset, to_code), inputs


def cast_check(x, to, attrs=None, opset=21, like=False):
    model, inputs = cast_model(x, to, attrs, opset, like)
    expected = run_reference(model, inputs)
    actual = np.asarray(run_graft(model, inputs))
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual.astype(np.float64), expected.astype(np.float64))


@pytest.mark.parametrize("src", NUMBERS)
def test_cast_numbers(src):
    values = np.array([0, 1, 2, 7, 100, 3.5, -0.0, 0.25, 42.75], np.float32)
    if np.dtype(src).kind == "u":
        values = np.abs(values)
    x = values.astype(src).reshape(3, 3)
    for to in NUMBERS:
        cast_check(x, to)
    cast_check(x, np.float32, like=True, opset=21)


def test_cast_wrapping_and_special():
    x = np.array([200, -56, 70000, -1], np.int32)
    cast_check(x, np.int8)
    cast_check(x, np.uint16)
    f = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30], np.float32)
    for to in (np.float16, np.float64, ml_dtypes.bfloat16, bool):
        cast_check(f, to)


F8 = [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2,
      ml_dtypes.float8_e5m2fnuz]
F8_VALUES = np.array([0.47892547, 0.48033667, 0.49968487, 0.81910545, 0.47031248, 0.7229038,
                      1000000, 1e-7, np.nan, np.inf, -np.inf, -0.0000001, 0.0000001, -1000000,
                      300, -0.0, 448, 470, 57344, 1e-3], np.float32)


@pytest.mark.parametrize("to", F8)
@pytest.mark.parametrize("saturate", [0, 1])
@pytest.mark.parametrize("src", [np.float32, np.float16])
def test_cast_float8(to, saturate, src):
    with np.errstate(over="ignore"):
        x = F8_VALUES.astype(src)
    cast_check(x, to, {"saturate": saturate}, opset=21)
    back = ml_dtypes.finfo(to)
    y = np.array([0.5, -2.0, float(back.max), float(back.smallest_subnormal), np.nan], to)
    cast_check(y, src)
    cast_check(y, np.float32, like=True, opset=21)


SMALL_INTS = [(ml_dtypes.int4, 21), (ml_dtypes.uint4, 21), (ml_dtypes.int2, 25),
              (ml_dtypes.uint2, 25)]  # with the first opset that has the type
# Per type: values whose nearest integer (ties to even) fits, most of them ties.
SMALL_INT_IN_RANGE = {
    ml_dtypes.int4: [-8.5, -7.5, -2.5, -0.5, 0.5, 1.5, 2.5, 6.5, -8.4, 7.4, -8, 7, 0, 3.7, -3.7],
    ml_dtypes.uint4: [-0.5, 0.5, 1.5, 2.5, 7.5, 8.5, 14.5, 15.4, 0, 15, 3.7, 9.2],
    ml_dtypes.int2: [-2.5, -1.5, -0.5, 0.5, -2.4, 1.4, -2, 1, 0, 0.7, -1.2],
    ml_dtypes.uint2: [-0.5, 0.5, 1.5, 2.5, 3.4, 0, 3, 0.7, 1.2],
}


def run_cast(x, to, opset, like=False):
    y = np.asarray(run_graft(*cast_model(x, to, opset=opset, like=like)))
    assert y.dtype == np.dtype(to)
    assert y.shape == x.shape
    return y


def test_cast_4bit_and_2bit():
    """Cast to and from INT4, UINT4, INT2 and UINT2, against what the ONNX spec defines, computed
    with NumPy: the ONNX reference goes through ml_dtypes, whose conversions from float have
    changed between versions (0.7.0 truncates toward zero and gives 0 out of range)."""
    for to, opset in SMALL_INTS:
        info = ml_dtypes.iinfo(to)
        # int4.md and int2.md, section Cast: "Cast to a 4 bit type is done by rounding to the
        # nearest-integer (with ties to even) nearest-even integer and truncating."
        for src in (np.float32, np.float64, np.float16, ml_dtypes.bfloat16):
            x = np.array(SMALL_INT_IN_RANGE[to], src)
            expected = np.rint(x.astype(np.float64))
            assert ((expected >= info.min) & (expected <= info.max)).all()
            for like in (False, True):
                y = run_cast(x, to, opset, like)
                np.testing.assert_array_equal(y.astype(np.float64), expected)

        # The same, section Cast: "Cast from 4 bit to any higher precision type is exact."
        values = np.arange(info.min, info.max + 1)
        for wide in (np.float32, np.float16, np.int8 if info.min < 0 else np.uint8):
            np.testing.assert_array_equal(run_cast(values.astype(to), wide, opset),
                                          values.astype(wide))

        # The Cast schema: "Casting from floating point to: [...] fixed point: undefined if
        # OOR." Out of range, only that the result is a value of the type, not which.
        for src in (np.float32, np.float16):
            x = np.array([info.max + 0.5, info.max + 1, info.max + 9, info.min - 0.6,
                          info.min - 1, info.min - 9, 100, -100, 6e4, -6e4, np.nan, np.inf,
                          -np.inf], src)
            y = run_cast(x, to, opset).astype(np.int64)
            assert ((y >= info.min) & (y <= info.max)).all()

        # The Cast schema, fixed point to fixed point: "when OOR, discard higher bits and
        # reinterpret (with respect to two's complement representation for signed types)".
        n = np.array([-9, -8, -1, 0, 1, 7, 8, 15, 16, 17, 100], np.int32)
        bits = 4 if to in (ml_dtypes.int4, ml_dtypes.uint4) else 2
        low = n & ((1 << bits) - 1)
        wrapped = np.where((info.min < 0) & (low >= 1 << (bits - 1)), low - (1 << bits), low)
        np.testing.assert_array_equal(run_cast(n, to, opset).astype(np.int64), wrapped)

    f4 = np.array([0.48, 0.25, 1.05, -3.5, -8, 9, 1e6, 1e-7, np.nan, np.inf, -np.inf, -4, 0.01,
                   -0.0, 2.5], np.float32)
    cast_check(f4, ml_dtypes.float4_e2m1fn, opset=23)
    cast_check(f4.astype(ml_dtypes.float4_e2m1fn), np.float32, opset=23)


@pytest.mark.parametrize("round_mode", ["up", "down", "nearest"])
@pytest.mark.parametrize("saturate", [0, 1])
def test_cast_e8m0(round_mode, saturate):
    x = np.array([0.0, 0.124, 0.25, 0.5, 1.1, 1.5, 2.0, 3.0, 4.0, 8.0, 1e38, 3e38, np.inf],
                 np.float32)
    cast_check(x, ml_dtypes.float8_e8m0fnu, {"saturate": saturate, "round_mode": round_mode},
               opset=24)
    cast_check(x.astype(ml_dtypes.float8_e8m0fnu), np.float32, opset=24)


def test_cast_strings():
    f = np.array([0.47892547, 1.5, -2.0, 1e-5, 1e20, 100.0, 0.0001, np.nan, np.inf, -np.inf],
                 np.float32)
    model = make_model("Cast", {"x": f}, {"to": TensorProto.STRING}, 21, TensorProto.STRING)
    y = run_graft(model, {"x": f})
    assert list(y) == list(f.astype(np.str_))
    d = np.array([0.1, 123456789.0, 1e16, -3.25], np.float64)
    model = make_model("Cast", {"x": d}, {"to": TensorProto.STRING}, 21, TensorProto.STRING)
    assert list(run_graft(model, {"x": d})) == list(d.astype(np.str_))
    i = np.array([-5, 0, 2**40], np.int64)
    model = make_model("Cast", {"x": i}, {"to": TensorProto.STRING}, 21, TensorProto.STRING)
    assert list(run_graft(model, {"x": i})) == ["-5", "0", str(2**40)]

    s = np.array(["1.5", "-2", "1e-5", "INF", "+INF", "-inf", "NaN", " 3 "], dtype=object)
    for to, code in ((np.float32, TensorProto.FLOAT), (np.float64, TensorProto.DOUBLE),
                     (np.float16, TensorProto.FLOAT16)):
        model = make_model("Cast", {"x": s}, {"to": code}, 21, code)
        y = run_graft(model, {"x": s})
        np.testing.assert_array_equal(y, np.array([x.strip() for x in s]).astype(to))
    ints = np.array(["12", "-7", "9007199254740993"], dtype=object)
    model = make_model("Cast", {"x": ints}, {"to": TensorProto.INT64}, 21, TensorProto.INT64)
    np.testing.assert_array_equal(run_graft(model, {"x": ints}), [12, -7, 9007199254740993])


# ---------------------------------------------------------------------------------------------
# Bad input: each must raise, never crash.


def test_errors():
    a, b = rand((2, 3), np.float32), rand((4,), np.float32)
    f32 = TensorProto.FLOAT

    def run(op, inputs, attrs=None, opset=21, out_dtype=f32):
        return run_graft(make_model(op, inputs, attrs, opset, out_dtype), inputs)

    with pytest.raises(ERRORS, match=r"\[2, 3\].*\[4\]"):
        run("Add", {"a": a, "b": b})
    with pytest.raises(ERRORS, match="broadcast"):
        run("Max", {"x0": a, "x1": a, "x2": b})
    with pytest.raises(ERRORS):
        run("Where", {"c": RNG.integers(0, 2, (5,)).astype(bool), "a": a, "b": a})
    with pytest.raises(ERRORS, match="scalar"):
        run("Clip", {"x": a, "lo": np.zeros((2,), np.float32)}, opset=13)
    with pytest.raises(ERRORS, match="hello"):
        run("Cast", {"x": np.array(["1.0", "hello"], dtype=object)}, {"to": f32})
    with pytest.raises(ERRORS, match="direction"):
        run("BitShift", {"a": b.astype(np.uint8), "b": b.astype(np.uint8)},
            {"direction": "UP"}, out_dtype=TensorProto.UINT8)
