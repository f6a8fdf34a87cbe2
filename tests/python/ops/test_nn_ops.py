"""CPU linear-algebra and neural-network kernels (MatMul, Gemm, MatMulInteger, Einsum, Conv,
ConvTranspose, pooling, normalization, Softmax family, Dropout, LRN, Resize) against the ONNX
reference implementation."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import graft

RNG = np.random.default_rng(0)
ERRORS = (graft.Fail, graft.InvalidArgument, graft.NotImplemented)


def make_model(op, inputs, attrs=None, opset=21, n_outputs=1, infer=True):
    """A one-node model over `inputs` (name -> array; None is an omitted optional input) with
    outputs typed by ONNX shape inference (left untyped when `infer` is False)."""
    names = list(inputs)
    outputs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op, [n if inputs[n] is not None else "" for n in names], outputs,
                            **(attrs or {}))
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
        for n, v in inputs.items() if v is not None]
    first = next(v for v in inputs.values() if v is not None)
    graph = helper.make_graph([node], "g", graph_inputs, [
        helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(first.dtype),
                                      [f"d{i}" for i in range(first.ndim)]) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    if not infer:
        return model
    inferred = onnx.shape_inference.infer_shapes(model)
    for i in range(n_outputs):
        model.graph.output[i].CopyFrom(inferred.graph.output[i])
    return model


def run_both(model, inputs):
    feeds = {k: v for k, v in inputs.items() if v is not None}
    expected = [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]
    actual = graft.InferenceSession(model.SerializeToString()).run(None, feeds)
    return actual, expected


def run_graft(op, inputs, attrs=None, opset=21):
    """Runs the op through graft alone (for inputs the reference would reject too)."""
    feeds = {k: v for k, v in inputs.items() if v is not None}
    model = make_model(op, inputs, attrs, opset, infer=False)
    return graft.InferenceSession(model.SerializeToString()).run(None, feeds)


def assert_close(actual, expected, rtol=1e-5, atol=1e-5):
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.dtype.kind == "f" or expected.dtype == ml_dtypes.bfloat16:
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


def check(op, inputs, attrs=None, opset=21, rtol=1e-4, atol=1e-4, n_outputs=1):
    actual, expected = run_both(make_model(op, inputs, attrs, opset, n_outputs), inputs)
    for a, e in zip(actual, expected):
        assert_close(a, e, rtol, atol)
    return actual


def rand(shape, dtype=np.float32, low=-2.0, high=2.0):
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return RNG.integers(max(info.min, -20), min(info.max, 20), size=shape).astype(dtype)
    return RNG.uniform(low, high, size=shape).astype(dtype)


# --- linear algebra ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.int64,
                                   np.uint32, np.uint64])
@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5)),
                                    ((3, 4), (4,)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2)),
                                    ((1, 3, 4), (6, 4, 2)), ((0, 3), (3, 2))])
def test_matmul(dtype, shapes):
    tol = 2e-2 if dtype == np.float16 else 1e-4
    check("MatMul", {"a": rand(shapes[0], dtype), "b": rand(shapes[1], dtype)}, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("c_shape", [None, (), (5,), (1, 5), (3, 1), (3, 5)])
def test_gemm(dtype, trans_a, trans_b, c_shape):
    a = rand((4, 3) if trans_a else (3, 4), dtype)
    b = rand((5, 4) if trans_b else (4, 5), dtype)
    c = None if c_shape is None else rand(c_shape, dtype)
    alpha, beta = (1.0, 1.0) if dtype == np.int64 else (0.5, 2.0)
    check("Gemm", {"a": a, "b": b, "c": c},
          {"transA": trans_a, "transB": trans_b, "alpha": alpha, "beta": beta})


def test_gemm_old_opset():
    check("Gemm", {"a": rand((3, 4)), "b": rand((4, 5)), "c": rand((5,))}, opset=7)


@pytest.mark.parametrize("a_dtype,b_dtype", [(np.uint8, np.uint8), (np.int8, np.int8),
                                             (np.uint8, np.int8)])
def test_matmul_integer(a_dtype, b_dtype):
    a, b = rand((2, 3, 4), a_dtype), rand((4, 5), b_dtype)
    check("MatMulInteger", {"a": a, "b": b, "za": np.array(3, a_dtype),
                            "zb": rand((5,), b_dtype)})
    check("MatMulInteger", {"a": a, "b": b})


@pytest.mark.parametrize("equation,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (1, 4, 5)]),
    ("bhid,bhjd->bhij", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("abc,cd", [(2, 3, 4), (4, 2)]),
    ("a...,a->...", [(3, 2, 2), (3,)]),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_einsum(equation, shapes, dtype):
    inputs = {f"x{i}": rand(s, dtype) for i, s in enumerate(shapes)}
    check("Einsum", inputs, {"equation": equation})


def test_linalg_errors():
    with pytest.raises(ERRORS):
        run_graft("MatMul", {"a": rand((3, 4)), "b": rand((5, 6))})
    with pytest.raises(ERRORS):
        run_graft("Einsum", {"a": rand((3, 4))}, {"equation": "ijk->i"})


# --- convolution ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((1, 3, 9, 9), (4, 3, 3, 3), {}),
    ((2, 4, 8, 7), (6, 2, 3, 2), {"group": 2, "pads": [1, 0, 1, 1], "strides": [2, 1]}),
    ((1, 2, 10), (3, 2, 3), {"dilations": [2], "pads": [2, 1]}),
    ((1, 2, 5, 6, 4), (2, 2, 3, 3, 2), {"strides": [1, 2, 1]}),
    ((1, 3, 7, 7), (3, 1, 3, 3), {"group": 3, "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 7, 7), (2, 3, 4, 4), {"auto_pad": "SAME_LOWER"}),
    ((1, 3, 7, 7), (2, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
    ((2, 8, 5, 5), (4, 8, 1, 1), {}),
])
def test_conv(dtype, x_shape, w_shape, attrs):
    tol = 5e-2 if dtype == np.float16 else 1e-4
    check("Conv", {"x": rand(x_shape, dtype), "w": rand(w_shape, dtype),
                   "b": rand((w_shape[0],), dtype)}, attrs, rtol=tol, atol=tol)


@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((1, 2, 4, 4), (2, 3, 3, 3), {}),
    ((1, 4, 3, 3), (4, 2, 3, 3), {"group": 2, "strides": [2, 2], "pads": [1, 1, 0, 0]}),
    ((1, 2, 5), (2, 2, 3), {"strides": [3], "output_padding": [1], "dilations": [2]}),
    ((1, 1, 3, 3), (1, 2, 3, 3), {"strides": [3, 2], "output_shape": [10, 8]}),
    ((1, 1, 3, 3), (1, 2, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((2, 2, 3, 3, 2), (2, 1, 2, 2, 2), {}),
])
def test_conv_transpose(x_shape, w_shape, attrs):
    inputs = {"x": rand(x_shape), "w": rand(w_shape),
              "b": rand((w_shape[1] * attrs.get("group", 1),))}
    if attrs.get("group", 1) == 1:
        check("ConvTranspose", inputs, attrs)
        return
    # The reference mishandles groups with several output channels each: compare with
    # onnxruntime instead.
    import onnxruntime
    model = make_model("ConvTranspose", inputs, attrs, opset=17)
    expected = onnxruntime.InferenceSession(model.SerializeToString(),
                                            providers=["CPUExecutionProvider"]).run(None, inputs)
    assert_close(run_graft("ConvTranspose", inputs, attrs, 17)[0], expected[0])


def test_conv_errors():
    with pytest.raises(ERRORS):  # channel mismatch
        run_graft("Conv", {"x": rand((1, 3, 5, 5)), "w": rand((2, 4, 3, 3))})
    with pytest.raises(ERRORS):  # kernel larger than the input
        run_graft("Conv", {"x": rand((1, 1, 2, 2)), "w": rand((1, 1, 3, 3))})


# --- pooling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("x_shape,attrs", [
    ((1, 2, 9, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 8, 7), {"kernel_shape": [3, 2], "ceil_mode": 1, "strides": [2, 2]}),
    ((2, 1, 10), {"kernel_shape": [3], "dilations": [2], "pads": [1, 2]}),
    ((1, 1, 4, 5, 6), {"kernel_shape": [2, 2, 3], "strides": [2, 1, 2]}),
    ((1, 3, 7, 7), {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 6, 6), {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER"}),
])
def test_average_and_lp_pool(dtype, x_shape, attrs):
    x = rand(x_shape, dtype)
    tol = 1e-2 if dtype == np.float16 else 1e-5
    for include in (0, 1):
        check("AveragePool", {"x": x}, {**attrs, "count_include_pad": include}, rtol=tol, atol=tol)
    if "auto_pad" not in attrs and "ceil_mode" not in attrs:
        check("LpPool", {"x": x}, {**attrs, "p": 2}, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8, np.uint8])
@pytest.mark.parametrize("x_shape,attrs", [
    ((1, 2, 9, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 8, 7), {"kernel_shape": [3, 2], "ceil_mode": 1, "strides": [2, 2]}),
    ((1, 2, 7, 7), {"kernel_shape": [2, 2], "dilations": [2, 2], "storage_order": 1}),
    ((2, 1, 10), {"kernel_shape": [3], "strides": [2]}),
    ((1, 1, 4, 5, 6), {"kernel_shape": [2, 2, 3], "strides": [2, 1, 2]}),
])
def test_max_pool(dtype, x_shape, attrs):
    # Distinct values, so the Indices output is unambiguous.
    x = RNG.permutation(np.prod(x_shape)).reshape(x_shape) % 200 - (0 if dtype == np.uint8 else 100)
    x = x.astype(dtype) if dtype != np.float16 else (x / 8).astype(dtype)
    n_outputs = 1 if dtype in (np.int8, np.uint8) else 2
    check("MaxPool", {"x": x}, attrs, n_outputs=n_outputs)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 2, 4, 4), (1, 2, 2, 3, 4)])
def test_global_pool(op, shape):
    # NumPy reference: the ONNX one gets the output rank wrong outside 4-D for GlobalMaxPool.
    x = rand(shape)
    axes = tuple(range(2, x.ndim))
    expected = {"GlobalAveragePool": lambda: x.mean(axis=axes, keepdims=True),
                "GlobalMaxPool": lambda: x.max(axis=axes, keepdims=True),
                "GlobalLpPool": lambda: np.sqrt((x * x).sum(axis=axes, keepdims=True))}[op]()
    assert_close(run_graft(op, {"x": x})[0], expected.astype(np.float32))


def test_pool_errors():
    with pytest.raises(ERRORS):
        run_graft("MaxPool", {"x": rand((1, 1, 2, 2))}, {"kernel_shape": [3, 3]})
    with pytest.raises(ERRORS):
        run_graft("AveragePool", {"x": rand((4, 4))}, {"kernel_shape": [2]})


# --- normalization ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 5), (1, 4, 3, 3)])
def test_batch_norm(dtype, shape):
    c = shape[1]
    tol = 1e-2 if dtype == np.float16 else 1e-5
    inputs = {"x": rand(shape, dtype), "s": rand((c,), dtype), "b": rand((c,), dtype),
              "m": rand((c,), dtype), "v": rand((c,), dtype, 0.5, 2.0)}
    y = check("BatchNormalization", inputs, {"epsilon": 1e-3}, rtol=tol, atol=tol)[0]
    # The reference's opset 9 kernel updates the statistics even in inference; the spec does not.
    for opset in (7, 9):
        assert_close(run_graft("BatchNormalization", inputs, {"epsilon": 1e-3}, opset)[0], y)


def test_batch_norm_training():
    inputs = {"x": rand((3, 4, 2, 2)), "s": rand((4,)), "b": rand((4,)), "m": rand((4,)),
              "v": rand((4,), low=0.5, high=2.0)}
    check("BatchNormalization", inputs, {"training_mode": 1, "momentum": 0.8}, opset=15,
          n_outputs=3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_instance_norm(dtype):
    check("InstanceNormalization", {"x": rand((2, 3, 4, 5), dtype), "s": rand((3,), dtype),
                                    "b": rand((3,), dtype)}, {"epsilon": 1e-4})


@pytest.mark.parametrize("axis", [-1, 1, 2, 0])
def test_layer_norm(axis):
    x = rand((2, 3, 4))
    norm_shape = x.shape[axis:]
    check("LayerNormalization", {"x": x, "s": rand(norm_shape), "b": rand(norm_shape)},
          {"axis": axis}, opset=17, n_outputs=3)
    check("LayerNormalization", {"x": x, "s": rand(norm_shape)}, {"axis": axis}, opset=17)


def test_group_norm():
    x = rand((2, 4, 3, 3))
    check("GroupNormalization", {"x": x, "s": rand((4,)), "b": rand((4,))},
          {"num_groups": 2, "epsilon": 1e-3}, opset=21)


def test_norm_errors():
    with pytest.raises(ERRORS):
        run_graft("BatchNormalization", {"x": rand((2, 3, 4)), "s": rand((4,)), "b": rand((3,)),
                                     "m": rand((3,)), "v": rand((3,))})
    with pytest.raises(ERRORS):
        run_graft("GroupNormalization", {"x": rand((2, 3, 3)), "s": rand((3,)), "b": rand((3,))},
              {"num_groups": 2}, opset=21)


# --- softmax family, dropout, LRN -------------------------------------------------------------

def softmax_flattened(op, x, axis):
    """Opset < 13 semantics: the op runs over the input flattened to 2-D at `axis`."""
    axis = axis % x.ndim
    flat = x.astype(np.float64).reshape(int(np.prod(x.shape[:axis])), -1)
    shifted = flat - flat.max(axis=1, keepdims=True)
    if op == "Softmax":
        y = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    elif op == "LogSoftmax":
        y = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    else:
        y = np.zeros_like(flat)
        y[np.arange(flat.shape[0]), flat.argmax(axis=1)] = 1
    return y.reshape(x.shape).astype(x.dtype)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset,axis", [(11, 1), (11, 0), (11, -1), (13, 1), (13, 0), (13, -1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_softmax(op, opset, axis, dtype):
    tol = 1e-2 if dtype == np.float16 else 1e-5
    x = rand((2, 3, 4), dtype)
    if op == "Hardmax":  # distinct values, so the maximum is unique
        x = (RNG.permutation(24).reshape(2, 3, 4) / 4).astype(dtype)
    if opset >= 13:
        check(op, {"x": x}, {"axis": axis}, opset=opset, rtol=tol, atol=tol)
    else:  # the reference implements only the opset 13 semantics
        assert_close(run_graft(op, {"x": x}, {"axis": axis}, opset)[0],
                     softmax_flattened(op, x, axis), tol, tol)


def test_dropout_inference_and_training():
    x = rand((3, 4))
    check("Dropout", {"x": x}, opset=13, n_outputs=2)
    check("Dropout", {"x": x}, {"ratio": 0.3}, opset=7)
    inputs = {"x": x, "r": np.array(0.5, np.float32), "t": np.array(True)}
    model = make_model("Dropout", inputs, {"seed": 3}, opset=13, n_outputs=2)
    y, mask = graft.InferenceSession(model.SerializeToString()).run(None, inputs)
    assert y.shape == x.shape and mask.dtype == np.bool_
    np.testing.assert_allclose(y, np.where(mask, x * 2, 0), rtol=1e-6)


def lrn_numpy(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    square_sum = np.zeros_like(x, dtype=np.float64)
    for c in range(x.shape[1]):
        lo, hi = max(0, c - (size - 1) // 2), min(x.shape[1], c + (size - 1) - (size - 1) // 2 + 1)
        square_sum[:, c] = (x[:, lo:hi].astype(np.float64) ** 2).sum(axis=1)
    return (x / (bias + alpha / size * square_sum) ** beta).astype(x.dtype)


def test_lrn():
    # The reference walks the batch dim instead of the channels, so compare with NumPy.
    x = rand((2, 5, 3, 3))
    attrs = {"size": 3, "alpha": 1e-1, "beta": 0.6, "bias": 2.0}
    assert_close(run_graft("LRN", {"x": x}, attrs)[0], lrn_numpy(x, **attrs))
    x = rand((1, 4, 3))
    assert_close(run_graft("LRN", {"x": x}, {"size": 2})[0], lrn_numpy(x, 2))


# --- Resize -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("coord", ["half_pixel", "asymmetric", "align_corners",
                                   "pytorch_half_pixel", "half_pixel_symmetric"])
@pytest.mark.parametrize("scales", [[1.0, 1.0, 2.0, 1.5], [1.0, 1.0, 0.6, 0.75]])
def test_resize_scales(mode, coord, scales):
    x = rand((1, 2, 4, 4))
    check("Resize", {"x": x, "roi": None, "scales": np.array(scales, np.float32)},
          {"mode": mode, "coordinate_transformation_mode": coord}, opset=19)


@pytest.mark.parametrize("attrs", [
    {"mode": "nearest", "nearest_mode": "ceil"},
    {"mode": "nearest", "nearest_mode": "round_prefer_ceil"},
    {"mode": "linear", "antialias": 1},
    {"mode": "cubic", "antialias": 1, "cubic_coeff_a": -0.5},
    {"mode": "cubic", "exclude_outside": 1},
    {"mode": "linear", "keep_aspect_ratio_policy": "not_larger"},
    {"mode": "nearest", "keep_aspect_ratio_policy": "not_smaller"},
])
def test_resize_sizes(attrs):
    x = rand((1, 1, 5, 6))
    check("Resize", {"x": x, "roi": None, "scales": None, "sizes": np.array([1, 1, 3, 8])},
          attrs, opset=19)


def test_resize_axes_and_crop():
    x = rand((2, 3, 6))
    check("Resize", {"x": x, "roi": None, "scales": None, "sizes": np.array([4, 9])},
          {"mode": "linear", "axes": [0, 2]}, opset=19)
    check("Resize", {"x": x, "roi": np.array([0, 0, 0.2, 1, 1, 0.9], np.float32),
                     "scales": None, "sizes": np.array([2, 3, 5])},
          {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
           "extrapolation_value": 10.0}, opset=13)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float16])
def test_resize_types(dtype):
    x = rand((1, 1, 3, 4), dtype, 0, 100)
    for mode in ("nearest", "linear"):
        check("Resize", {"x": x, "roi": None, "scales": np.array([1, 1, 1.7, 2.2], np.float32)},
              {"mode": mode}, opset=19, rtol=1e-2, atol=1e-2 if dtype == np.float16 else 1)


def test_resize_errors():
    with pytest.raises(ERRORS):
        run_graft("Resize", {"x": rand((1, 4)), "roi": None, "scales": np.array([1.0], np.float32)},
              {"mode": "nearest"}, opset=19)
