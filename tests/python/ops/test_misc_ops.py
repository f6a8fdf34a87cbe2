"""CPU misc and signal kernels (normalization, detection, sampling, random, DFT...) against the
ONNX reference implementation or NumPy."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import graft

RNG = np.random.default_rng(0)
ERRORS = (graft.Fail, graft.InvalidArgument, graft.NotImplemented)
I64 = np.int64


def _value_info(name, value):
    if isinstance(value, list):
        elem = helper.np_dtype_to_tensor_dtype(value[0].dtype) if value else TensorProto.FLOAT
        return helper.make_tensor_sequence_value_info(name, elem, None)
    return helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape))


def make_model(op, inputs, outputs, attrs=None, opset=22, input_names=None, output_types=None):
    """A one-node model. `inputs` maps names to arrays (or lists for sequences); None values
    are omitted optional inputs."""
    names = input_names or list(inputs)
    node = helper.make_node(op, [n if inputs.get(n) is not None else "" for n in names],
                            outputs, **(attrs or {}))
    graph_inputs = [_value_info(n, v) for n, v in inputs.items() if v is not None]
    graph_outputs = output_types or [helper.make_empty_tensor_value_info(o) for o in outputs]
    graph = helper.make_graph([node], "g", graph_inputs, graph_outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    if not output_types:
        inferred = onnx.shape_inference.infer_shapes(model)
        for out, found in zip(model.graph.output, inferred.graph.output):
            out.type.CopyFrom(found.type)
    return model


def _typed(outputs, values):
    return [_value_info(n, v if isinstance(v, list) else np.asarray(v))
            for n, v in zip(outputs, values)]


def run_graft(model, inputs):
    feeds = {k: v for k, v in inputs.items() if v is not None}
    return graft.InferenceSession(model.SerializeToString()).run(None, feeds)


def run_reference(model, inputs):
    feeds = {k: v for k, v in inputs.items() if v is not None}
    return ReferenceEvaluator(model).run(None, feeds)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol, atol)
        return
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.dtype.kind in "fc" or expected.dtype.name == "bfloat16":
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(actual, expected)


def check(op, inputs, n_outputs=1, attrs=None, opset=22, rtol=1e-5, atol=1e-6, input_names=None):
    """Runs the node in graft and in the reference; compares every output."""
    outputs = [f"y{i}" for i in range(n_outputs)]
    model = make_model(op, inputs, outputs, attrs, opset, input_names)
    expected = run_reference(model, inputs)
    model = make_model(op, inputs, outputs, attrs, opset, input_names, _typed(outputs, expected))
    actual = run_graft(model, inputs)
    assert_close(actual, expected, rtol, atol)
    return actual


def compare(op, inputs, expected, attrs=None, opset=22, rtol=1e-5, atol=1e-6, input_names=None):
    """Runs the node in graft and compares with `expected` (a list of outputs)."""
    outputs = [f"y{i}" for i in range(len(expected))]
    model = make_model(op, inputs, outputs, attrs, opset, input_names, _typed(outputs, expected))
    actual = run_graft(model, inputs)
    assert_close(actual, expected, rtol, atol)
    return actual


def fails(op, inputs, n_outputs=1, attrs=None, opset=22, input_names=None):
    outputs = [f"y{i}" for i in range(n_outputs)]
    with pytest.raises(ERRORS):
        run_graft(make_model(op, inputs, outputs, attrs, opset, input_names), inputs)


def normal(shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


# --- LpNormalization, Shrink, CumProd, BitCast, Det -----------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("p,axis", [(1, 0), (2, 1), (2, -1), (1, -1)])
def test_lp_normalization(dtype, p, axis):
    x = normal((3, 4, 5), dtype)
    x[0, 0, 0] = 0  # a partly-zero slice
    x32 = x.astype(np.float64)
    norm = np.sum(np.abs(x32) ** p, axis=axis, keepdims=True) ** (1.0 / p)
    expected = np.where(norm == 0, 0, x32 / np.where(norm == 0, 1, norm)).astype(dtype)
    tol = 2e-3 if dtype == np.float16 else 1e-5
    for opset in (1, 22):
        compare("LpNormalization", {"x": x}, [expected], {"p": p, "axis": axis}, opset,
                rtol=tol, atol=tol)


def test_lp_normalization_zero_norm_and_bad_p():
    x = np.zeros((2, 3), np.float32)
    compare("LpNormalization", {"x": x}, [x], {"p": 2})
    fails("LpNormalization", {"x": x}, attrs={"p": 3})


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int8, np.int32,
                                   np.int64, np.uint8, np.uint32])
@pytest.mark.parametrize("bias,lambd", [(0.0, 0.5), (1.5, 1.0), (2.0, 3.0)])
def test_shrink(dtype, bias, lambd):
    if np.dtype(dtype).kind in "iu":
        x = RNG.integers(0 if np.dtype(dtype).kind == "u" else -6, 7, (4, 5)).astype(dtype)
        bias = float(int(bias))  # keeps the reference's promotion exact
    else:
        x = (normal((4, 5)) * 3).astype(dtype)
    check("Shrink", {"x": x}, attrs={"bias": bias, "lambd": lambd}, opset=9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.int64,
                                   np.uint32, np.uint64])
@pytest.mark.parametrize("axis,exclusive,reverse", [(0, 0, 0), (1, 1, 0), (-1, 0, 1),
                                                    (2, 1, 1), (-3, 1, 0)])
def test_cum_prod(dtype, axis, exclusive, reverse):
    x = RNG.integers(1, 4, (2, 3, 4)).astype(dtype)
    if np.dtype(dtype).kind == "f":
        x = (x * (0.6 + 0.2 * RNG.random((2, 3, 4)))).astype(dtype)
    check("CumProd", {"x": x, "axis": np.array(axis, I64)},
          attrs={"exclusive": exclusive, "reverse": reverse}, opset=26, rtol=1e-3)


def test_cum_prod_bad_axis():
    fails("CumProd", {"x": normal((2, 3)), "axis": np.array(2, I64)}, opset=26)
    fails("CumProd", {"x": normal((2, 3)), "axis": np.array([0, 1], I64)}, opset=26)


@pytest.mark.parametrize("src,to", [(np.float32, TensorProto.INT32),
                                    (np.int32, TensorProto.FLOAT),
                                    (np.float64, TensorProto.UINT64),
                                    (np.int16, TensorProto.FLOAT16),
                                    (np.uint8, TensorProto.INT8),
                                    (np.int64, TensorProto.DOUBLE),
                                    (np.bool_, TensorProto.UINT8)])
def test_bit_cast(src, to):
    if src == np.bool_:
        x = RNG.integers(0, 2, (3, 4)).astype(bool)
    elif np.dtype(src).kind == "f":
        x = normal((3, 4), src)
    else:
        x = RNG.integers(-100 if np.dtype(src).kind == "i" else 0, 100, (3, 4)).astype(src)
    expected = x.view(helper.tensor_dtype_to_np_dtype(to))
    compare("BitCast", {"x": x}, [expected], {"to": to}, opset=26)


def test_bit_cast_width_mismatch():
    fails("BitCast", {"x": normal((3,))}, attrs={"to": TensorProto.INT64}, opset=26)
    fails("BitCast", {"x": normal((3,))}, attrs={"to": TensorProto.STRING}, opset=26)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (2, 1, 5, 5), (1, 1), (0, 2, 2)])
def test_det(dtype, shape):
    check("Det", {"x": normal(shape, dtype)}, opset=11, rtol=1e-4, atol=1e-5)


def test_det_singular_and_float16():
    x = np.array([[1, 2], [2, 4]], np.float32)
    compare("Det", {"x": x}, [np.array(0, np.float32)])
    x16 = normal((2, 3, 3), np.float16)
    compare("Det", {"x": x16}, [np.linalg.det(x16.astype(np.float64)).astype(np.float16)],
            rtol=1e-2, atol=1e-2)
    fails("Det", {"x": normal((2, 3))})


# --- MaxUnpool, Col2Im ----------------------------------------------------------------------


def _max_pool_with_indices(x, kernel, strides):
    model = make_model("MaxPool", {"x": x}, ["y", "i"], {"kernel_shape": kernel,
                                                       "strides": strides}, opset=12)
    return ReferenceEvaluator(model).run(None, {"x": x})


@pytest.mark.parametrize("shape,kernel,strides", [((1, 2, 4, 4), [2, 2], [2, 2]),
                                                  ((2, 1, 5, 6), [3, 2], [2, 2]),
                                                  ((1, 3, 8), [2], [2])])
@pytest.mark.parametrize("with_shape", [False, True])
def test_max_unpool(shape, kernel, strides, with_shape):
    x = normal(shape)
    pooled, indices = _max_pool_with_indices(x, kernel, strides)
    inputs = {"x": pooled, "i": indices}
    if with_shape:
        inputs["s"] = np.array([d + (1 if k >= 2 else 0) for k, d in enumerate(shape)], I64)
    for opset in (9, 11, 22):
        check("MaxUnpool", inputs, attrs={"kernel_shape": kernel, "strides": strides},
              opset=opset)


def test_max_unpool_bad_index():
    fails("MaxUnpool", {"x": normal((1, 1, 2, 2)), "i": np.array([[[[0, 1], [2, 99]]]], I64)},
          attrs={"kernel_shape": [2, 2], "strides": [2, 2]})


@pytest.mark.parametrize("image,block,attrs", [
    ([5, 5], [1, 5], {}),
    ([5, 5], [2, 2], {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ([6, 7], [2, 3], {"dilations": [2, 1], "pads": [0, 1, 1, 0]}),
    ([3, 4, 5], [2, 2, 2], {}),
    ([9], [3], {"strides": [2]}),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_col2im(image, block, attrs, dtype):
    dims = len(image)
    pads = attrs.get("pads", [0] * 2 * dims)
    strides = attrs.get("strides", [1] * dims)
    dil = attrs.get("dilations", [1] * dims)
    blocks = 1
    for d in range(dims):
        blocks *= (image[d] + pads[d] + pads[dims + d] - dil[d] * (block[d] - 1) - 1) // strides[d] + 1
    x = (normal((2, 2 * int(np.prod(block)), blocks)) * 10).astype(dtype)
    check("Col2Im", {"x": x, "image": np.array(image, I64), "block": np.array(block, I64)},
          attrs=attrs, opset=18)


def test_col2im_bad_block_count():
    fails("Col2Im", {"x": normal((1, 4, 7)), "image": np.array([4, 4], I64),
                     "block": np.array([2, 2], I64)}, opset=18)


# --- GridSample, RoiAlign, NonMaxSuppression -------------------------------------------------


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_2d(mode, padding, align):
    x = normal((1, 2, 4, 5))
    grid = (RNG.random((1, 3, 4, 2)) * 3 - 1.5).astype(np.float32)
    check("GridSample", {"x": x, "grid": grid},
          attrs={"mode": mode, "padding_mode": padding, "align_corners": align}, opset=22,
          rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_grid_sample_3d(mode, padding):
    x = normal((2, 1, 3, 4, 3))
    grid = (RNG.random((2, 2, 2, 3, 3)) * 2.6 - 1.3).astype(np.float32)
    check("GridSample", {"x": x, "grid": grid},
          attrs={"mode": mode, "padding_mode": padding, "align_corners": 0}, opset=22,
          rtol=1e-4, atol=1e-5)


def test_grid_sample_opset16_names_and_double():
    x = normal((1, 1, 3, 3), np.float64)
    grid = (RNG.random((1, 2, 2, 2)) * 2 - 1).astype(np.float64)
    for mode, new in (("bilinear", "linear"), ("bicubic", "cubic")):
        expected = run_reference(
            make_model("GridSample", {"x": x, "grid": grid}, ["y0"], {"mode": new}, 20),
            {"x": x, "grid": grid})
        compare("GridSample", {"x": x, "grid": grid}, expected, {"mode": mode}, opset=16)
    fails("GridSample", {"x": x, "grid": grid}, attrs={"mode": "area"}, opset=20)
    fails("GridSample", {"x": x, "grid": grid[..., :1]}, opset=20)


def test_grid_sample_half_and_integer_types():
    x = normal((1, 2, 4, 4), np.float16)
    grid = (RNG.random((1, 3, 3, 2)) * 2 - 1).astype(np.float16)
    check("GridSample", {"x": x, "grid": grid}, opset=22, rtol=1e-2, atol=1e-2)
    xi = RNG.integers(-50, 50, (1, 1, 4, 4)).astype(np.int32)
    check("GridSample", {"x": xi, "grid": grid.astype(np.float32)},
          attrs={"mode": "nearest", "padding_mode": "border"}, opset=22)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("transform", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align(mode, transform, sampling_ratio):
    x = normal((2, 3, 8, 9))
    rois = np.array([[0, 0, 7, 7], [1.5, 2.0, 6.5, 5.0], [3, 1, 4, 8], [-1, -1, 10, 9]],
                    np.float32)
    batch = np.array([0, 1, 1, 0], I64)
    check("RoiAlign", {"x": x, "rois": rois, "b": batch},
          attrs={"mode": mode, "coordinate_transformation_mode": transform,
                 "output_height": 3, "output_width": 2, "sampling_ratio": sampling_ratio,
                 "spatial_scale": 0.9}, opset=16, rtol=1e-4, atol=1e-5)


def test_roi_align_opset10_default_and_bad_batch():
    x = normal((1, 1, 6, 6))
    rois = np.array([[0.5, 0.5, 4.0, 3.5]], np.float32)
    inputs = {"x": x, "rois": rois, "b": np.array([0], I64)}
    # Opset 10 has no coordinate_transformation_mode; it behaves as output_half_pixel.
    expected = run_reference(
        make_model("RoiAlign", inputs, ["y0"], {"output_height": 2, "output_width": 2,
                                              "coordinate_transformation_mode":
                                                  "output_half_pixel"}, 16), inputs)
    compare("RoiAlign", inputs, expected, {"output_height": 2, "output_width": 2}, opset=10,
            rtol=1e-4)
    fails("RoiAlign", {"x": x, "rois": rois, "b": np.array([3], I64)}, opset=16)


def _boxes(batches, n):
    corner = RNG.random((batches, n, 2)).astype(np.float32) * 10
    size = RNG.random((batches, n, 2)).astype(np.float32) * 4 + 0.5
    return np.concatenate([corner, corner + size], axis=2)


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("iou,score", [(0.3, None), (0.5, 0.4), (0.0, 0.0)])
def test_non_max_suppression(center, iou, score):
    boxes = _boxes(2, 12)
    scores = RNG.random((2, 3, 12)).astype(np.float32)
    inputs = {"boxes": boxes, "scores": scores, "max": np.array([4], I64),
              "iou": np.array([iou], np.float32),
              "score": None if score is None else np.array([score], np.float32)}
    check("NonMaxSuppression", inputs, attrs={"center_point_box": center}, opset=11,
          input_names=["boxes", "scores", "max", "iou", "score"])


def test_non_max_suppression_defaults_and_bad_shapes():
    boxes, scores = _boxes(1, 5), RNG.random((1, 1, 5)).astype(np.float32)
    # Without max_output_boxes_per_class nothing is selected.
    compare("NonMaxSuppression", {"boxes": boxes, "scores": scores}, [np.zeros((0, 3), I64)],
            opset=10)
    fails("NonMaxSuppression", {"boxes": boxes, "scores": RNG.random((1, 1, 4)).astype(np.float32)},
          opset=11)


# --- TensorScatter ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("axis", [-2, 1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.float16, object])
def test_tensor_scatter(mode, axis, dtype):
    shape = [2, 6, 5, 3]
    upd_shape = list(shape)
    upd_shape[axis] = 2
    cache = normal(shape).astype(dtype) if dtype != object else \
        np.array([f"c{i}" for i in range(int(np.prod(shape)))], object).reshape(shape)
    update = normal(upd_shape).astype(dtype) if dtype != object else \
        np.array([f"u{i}" for i in range(int(np.prod(upd_shape)))], object).reshape(upd_shape)
    limit = shape[axis] - 1 if mode == "circular" else shape[axis] - 2
    write = np.array([0, limit], I64)
    check("TensorScatter", {"c": cache, "u": update, "w": write},
          attrs={"mode": mode, "axis": axis}, opset=24)
    check("TensorScatter", {"c": cache, "u": update}, attrs={"mode": mode, "axis": axis},
          opset=24)


def test_tensor_scatter_overflow():
    cache, update = normal((1, 4, 2)), normal((1, 3, 2))
    fails("TensorScatter", {"c": cache, "u": update, "w": np.array([2], I64)},
          attrs={"axis": 1}, opset=24)


# --- random generators -----------------------------------------------------------------------


def _run_random(op, inputs, attrs, opset=22):
    model = make_model(op, inputs, ["y0"], attrs, opset)
    return run_graft(model, inputs)[0]


@pytest.mark.parametrize("dtype", [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16])
def test_random_uniform_and_normal(dtype):
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    u = _run_random("RandomUniform", {}, {"shape": [200, 100], "low": -2.0, "high": 3.0,
                                         "dtype": dtype})
    assert u.dtype == np_type and u.shape == (200, 100)
    assert u.min() >= -2.0 and u.max() <= 3.0
    assert abs(float(u.astype(np.float64).mean()) - 0.5) < 0.05
    n = _run_random("RandomNormal", {}, {"shape": [200, 100], "mean": 1.0, "scale": 2.0,
                                        "dtype": dtype}, opset=1)
    assert n.dtype == np_type and n.shape == (200, 100)
    n64 = n.astype(np.float64)
    assert abs(n64.mean() - 1.0) < 0.05 and abs(n64.std() - 2.0) < 0.05


def test_random_like_and_seed():
    x = np.zeros((30, 40), np.float64)
    u = _run_random("RandomUniformLike", {"x": x}, {})
    assert u.dtype == np.float64 and u.shape == x.shape and 0 <= u.min() and u.max() < 1
    n = _run_random("RandomNormalLike", {"x": x.astype(np.int32)},
                    {"dtype": TensorProto.FLOAT})
    assert n.dtype == np.float32 and n.shape == x.shape
    a = _run_random("RandomNormal", {}, {"shape": [5], "seed": 3.0})
    b = _run_random("RandomNormal", {}, {"shape": [5], "seed": 3.0})
    c = _run_random("RandomNormal", {}, {"shape": [5], "seed": 4.0})
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    fails("RandomUniformLike", {"x": x.astype(np.int32)})  # no float dtype to draw
    fails("RandomUniform", {}, attrs={"shape": [2], "dtype": TensorProto.INT32})


def test_multinomial():
    logits = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]], np.float32) + 1e-30)
    y = _run_random("Multinomial", {"x": logits}, {"sample_size": 4000, "seed": 1.0}, opset=7)
    assert y.dtype == np.int32 and y.shape == (2, 4000)
    freq = np.bincount(y[0], minlength=3) / 4000
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.7], atol=0.03)
    assert set(np.unique(y[1])) <= {0, 1}
    y64 = _run_random("Multinomial", {"x": logits}, {"dtype": TensorProto.INT64})
    assert y64.dtype == np.int64 and y64.shape == (2, 1)
    fails("Multinomial", {"x": logits[0]})


@pytest.mark.parametrize("dtype", [None, TensorProto.DOUBLE, TensorProto.BOOL, TensorProto.INT32])
def test_bernoulli(dtype):
    p = np.tile(np.array([0.0, 0.25, 1.0], np.float32), (3000, 1))
    y = _run_random("Bernoulli", {"x": p}, {} if dtype is None else {"dtype": dtype}, opset=15)
    expected_type = np.float32 if dtype is None else helper.tensor_dtype_to_np_dtype(dtype)
    assert y.dtype == expected_type and y.shape == p.shape
    mean = y.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(mean, [0.0, 0.25, 1.0], atol=0.03)


# --- SequenceMap -----------------------------------------------------------------------------


def _sequence_map_model(body_nodes, body_inputs, body_outputs, inputs, n_out):
    body = helper.make_graph(body_nodes, "body", body_inputs, body_outputs)
    node = helper.make_node("SequenceMap", list(inputs), [f"y{i}" for i in range(n_out)],
                            body=body)
    graph = helper.make_graph([node], "g", [_value_info(k, v) for k, v in inputs.items()],
                              [helper.make_tensor_sequence_value_info(f"y{i}", TensorProto.UNDEFINED,
                                                                      None)
                               for i in range(n_out)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("second", ["tensor", "sequence"])
def test_sequence_map(second):
    seq = [normal((2, 3)), normal((4, 3)), normal((1, 3))]
    other = [normal((1, 3)), normal((1, 3)), normal((1, 3))] if second == "sequence" else \
        normal((3,))
    f = TensorProto.FLOAT
    body_in = [helper.make_tensor_value_info(n, f, None) for n in ("a", "b")]
    body_out = [helper.make_tensor_value_info("s", f, None),
                helper.make_tensor_value_info("shape", TensorProto.INT64, None)]
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Shape", ["a"], ["shape"])]
    inputs = {"seq": seq, "other": other}
    model = _sequence_map_model(nodes, body_in, body_out, inputs, 2)
    expected = ReferenceEvaluator(model).run(None, inputs)
    actual = run_graft(model, inputs)
    assert_close(actual, expected)


def test_sequence_map_three_inputs_and_empty():
    seq = [normal((2, 3)), normal((4, 3))]
    other = [normal((1, 3)), normal((1, 3))]
    bias = normal((3,))
    f = TensorProto.FLOAT
    body_in = [helper.make_tensor_value_info(n, f, None) for n in ("a", "b", "c")]
    nodes = [helper.make_node("Add", ["a", "b"], ["t"]), helper.make_node("Add", ["t", "c"], ["s"])]
    inputs = {"seq": seq, "other": other, "bias": bias}
    body_out = [helper.make_tensor_value_info("s", f, None)]
    model = _sequence_map_model(nodes, body_in, body_out, inputs, 1)
    actual = run_graft(model, inputs)
    assert_close(actual, [[s + o + bias for s, o in zip(seq, other)]])
    empty = {"seq": [], "other": [], "bias": bias}
    model = _sequence_map_model(nodes, body_in, body_out, empty, 1)
    assert run_graft(model, empty) == [[]]


def test_sequence_map_length_mismatch():
    f = TensorProto.FLOAT
    body_in = [helper.make_tensor_value_info(n, f, None) for n in ("a", "b")]
    nodes = [helper.make_node("Add", ["a", "b"], ["s"])]
    inputs = {"seq": [normal((2,))] * 3, "other": [normal((2,))] * 2}
    model = _sequence_map_model(nodes, body_in, [helper.make_tensor_value_info("s", f, None)],
                                inputs, 1)
    with pytest.raises(ERRORS):
        run_graft(model, inputs)


# --- DFT, STFT, MelWeightMatrix --------------------------------------------------------------


def _as_parts(z):
    return np.stack([z.real, z.imag], axis=-1)


@pytest.mark.parametrize("n", [8, 10, 7, 1, 16])
@pytest.mark.parametrize("opset", [17, 20])
def test_dft_forward_inverse(n, opset):
    z = RNG.standard_normal((3, n, 2)) + 1j * RNG.standard_normal((3, n, 2))
    x = _as_parts(z).astype(np.float64)
    axis_inputs = {"x": x, "n": None, "axis": np.array(1, I64)} if opset >= 20 else {"x": x}
    attrs = {} if opset >= 20 else {"axis": 1}
    compare("DFT", axis_inputs, [_as_parts(np.fft.fft(z, axis=1))], attrs, opset,
            rtol=1e-9, atol=1e-9)
    compare("DFT", axis_inputs, [_as_parts(np.fft.ifft(z, axis=1))], {**attrs, "inverse": 1},
            opset, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("length", [6, 9, 12, 32])
def test_dft_real_onesided_and_lengths(length):
    r = RNG.standard_normal((2, 11)).astype(np.float32)
    x = r[..., None]
    compare("DFT", {"x": x, "n": np.array(length, I64)},
            [_as_parts(np.fft.rfft(r, n=length, axis=1)).astype(np.float32)],
            {"onesided": 1}, opset=17, rtol=1e-4, atol=1e-4)
    spectrum = np.fft.rfft(RNG.standard_normal((2, length)), axis=1)
    compare("DFT", {"x": _as_parts(spectrum), "n": np.array(length, I64)},
            [np.fft.irfft(spectrum, n=length, axis=1)[..., None]],
            {"onesided": 1, "inverse": 1}, opset=17, rtol=1e-9, atol=1e-9)


def test_dft_axis_last_and_reference():
    x = normal((2, 4, 6, 1))
    check("DFT", {"x": x, "n": None, "axis": np.array(-2, I64)}, opset=20, rtol=1e-4, atol=1e-4)
    check("DFT", {"x": x, "n": None, "axis": np.array(0, I64)}, opset=20, rtol=1e-4, atol=1e-4)
    fails("DFT", {"x": x, "n": None, "axis": np.array(3, I64)}, opset=20)
    fails("DFT", {"x": normal((2, 4, 3))}, opset=20)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("frame,step,onesided", [(8, 4, 1), (6, 3, 0), (5, 2, 1)])
@pytest.mark.parametrize("with_window", [False, True])
def test_stft(dtype, frame, step, onesided, with_window):
    x = normal((2, 20, 1), dtype)
    window = np.hanning(frame).astype(dtype) if with_window else None
    inputs = {"x": x, "step": np.array(step, I64), "w": window, "len": np.array(frame, I64)}
    check("STFT", inputs, attrs={"onesided": onesided}, opset=17, rtol=1e-4, atol=1e-4)


def test_stft_bad_frame():
    fails("STFT", {"x": normal((1, 8, 1)), "step": np.array(2, I64), "w": None,
                   "len": np.array(9, I64)}, opset=17)


@pytest.mark.parametrize("dtype", [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT32])
@pytest.mark.parametrize("bins,length,rate,low,high", [(8, 16, 8192, 0.0, 4096.0),
                                                       (10, 64, 16000, 20.0, 7000.0),
                                                       (4, 33, 8000, 100.0, 3000.0)])
def test_mel_weight_matrix(dtype, bins, length, rate, low, high):
    inputs = {"bins": np.array(bins, I64), "len": np.array(length, I64),
              "rate": np.array(rate, I64), "low": np.array(low, np.float32),
              "high": np.array(high, np.float32)}
    check("MelWeightMatrix", inputs, attrs={"output_datatype": dtype}, opset=17)


def test_mel_weight_matrix_edge_past_nyquist():
    inputs = {"bins": np.array(4, I64), "len": np.array(16, I64), "rate": np.array(100, I64),
              "low": np.array(0, np.float32), "high": np.array(500, np.float32)}
    fails("MelWeightMatrix", inputs, opset=17)
