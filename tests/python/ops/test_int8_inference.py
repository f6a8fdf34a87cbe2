"""Int8 inference: QDQ models from onnxruntime.quantization.quantize_static run as QLinearConv /
QLinearMatMul after graft's fuse_qdq pass, and dynamically quantized models (quantize_dynamic)
run MatMulInteger with constant int8 weights packed for oneDNN.

Where the spec defines the integer result exactly (MatMulInteger, DynamicQuantizeLinear) the
comparison is exact: with the CPU provider's option int8_exact "1", or by default where the CPU's
int8 instructions cannot saturate (VNNI, or 7-bit weights with uint8 activations). By default
they add neighbouring u8 * s8 products in saturating int16 without VNNI, as onnxruntime's and
OpenVINO's kernels do there, which the spec does not allow; such results are not compared
exactly. A requantized 8-bit result (QLinearConv) may differ by one quantization step
from the reference: graft's int8 convolution scales the int32 sum in float32 and rounds once,
the reference in double, so a value within a float32 rounding of a half step rounds either way.
Whole models compare within a few output steps, as such differences propagate."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)

import graft

RNG = np.random.default_rng(7)


def graft_session(model, level=99, saved=None, int8_exact=False):
    opts = graft.SessionOptions()
    opts.graph_optimization_level = level
    if saved:
        opts.optimized_model_filepath = str(saved)
    providers = [("CPUExecutionProvider", {"int8_exact": "1"})] if int8_exact else None
    return graft.InferenceSession(model.SerializeToString(), sess_options=opts,
                                  providers=providers)


def ort_run(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def within_one_step(actual, expected, exact_fraction=0.99):
    """8-bit results that differ by at most one step, almost all exactly."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    diff = np.abs(actual.astype(np.int32) - expected.astype(np.int32))
    assert diff.max() <= 1, diff.max()
    assert (diff == 0).mean() >= exact_fraction, (diff == 0).mean()


# --- QLinearConv with constant weights (oneDNN int8 convolution) ------------------------------

def qlinear_conv_model(x_dtype, x_shape, w, w_scale, bias, attrs, x_zero, y_zero):
    def tensor(dtype):
        return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "sx"),
             numpy_helper.from_array(np.array(x_zero, x_dtype), "zx"),
             numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(w_scale, "sw"),
             numpy_helper.from_array(np.zeros(w_scale.shape, np.int8), "zw"),
             numpy_helper.from_array(np.array(0.3, np.float32), "sy"),
             numpy_helper.from_array(np.array(y_zero, x_dtype), "zy")]
    inputs = ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
        inputs.append("b")
    node = helper.make_node("QLinearConv", inputs, ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", tensor(x_dtype),
                                                                          list(x_shape))],
                              [helper.make_tensor_value_info("y", tensor(x_dtype), None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((1, 3, 15, 13), (16, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 8, 9, 9), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((2, 32, 7, 7), (48, 32, 1, 1), {}),
    ((1, 16, 10, 11), (24, 8, 3, 2), {"group": 2, "pads": [0, 1, 2, 0], "dilations": [2, 1]}),
    ((3, 4, 8, 8), (5, 4, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("w_bound", [127, 64])
def test_qlinear_conv_packed_matches_reference(x_dtype, x_shape, w_shape, attrs, per_channel,
                                               w_bound):
    info = np.iinfo(x_dtype)
    x = RNG.integers(info.min, info.max + 1, size=x_shape).astype(x_dtype)
    w = RNG.integers(-w_bound, w_bound + 1, size=w_shape).astype(np.int8)
    m = w_shape[0]
    w_scale = (RNG.uniform(0.002, 0.01, (m,)) if per_channel else np.array(0.005)).astype(
        np.float32)
    bias = RNG.integers(-3000, 3000, size=(m,)).astype(np.int32)
    x_zero, y_zero = (131, 60) if x_dtype == np.uint8 else (-9, 5)
    for b in (bias, None):
        model = qlinear_conv_model(x_dtype, x_shape, w, w_scale, b, attrs, x_zero, y_zero)
        reference = np.asarray(ReferenceEvaluator(model).run(None, {"x": x})[0])
        exact = graft_session(model, int8_exact=True).run(None, {"x": x})[0]
        within_one_step(exact, reference)
        if w_bound <= 64:
            # Without VNNI onnxruntime's u8 * s8 products saturate for 8-bit weights (its
            # reduce_range advice); 7-bit weights are exact on every CPU, by default too.
            within_one_step(graft_session(model).run(None, {"x": x})[0], reference)
            within_one_step(exact, ort_run(model, {"x": x})[0])


def test_qlinear_conv_packed_errors():
    w = RNG.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)
    model = qlinear_conv_model(np.uint8, (1, "c", 8, 8), w, np.array(0.01, np.float32), None,
                               {}, 0, 0)
    sess = graft_session(model)
    with pytest.raises((graft.Fail, graft.InvalidArgument), match="QLinearConv.*channels"):
        sess.run(None, {"x": np.zeros((1, 5, 8, 8), np.uint8)})


# --- MatMulInteger with a constant int8 B (oneDNN int8 matmul, int32 output) -----------------

def matmul_integer_model(a_dtype, a_shape, b, b_zero, a_zero_shape):
    def tensor(dtype):
        return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inits = [numpy_helper.from_array(b, "b")]
    inputs = ["a", "b", "za" if a_zero_shape is not None else ""]
    graph_inputs = [helper.make_tensor_value_info("a", tensor(a_dtype), list(a_shape))]
    if a_zero_shape is not None:
        graph_inputs.append(helper.make_tensor_value_info("za", tensor(a_dtype),
                                                          list(a_zero_shape)))
    if b_zero is not None:
        inits.append(numpy_helper.from_array(b_zero, "zb"))
        inputs.append("zb")
    node = helper.make_node("MatMulInteger", inputs, ["y"])
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("a_shape,n", [((5, 64), 48), ((2, 7, 96), 33), ((96,), 16),
                                       ((3, 1, 768), 768)])
@pytest.mark.parametrize("a_zero", ["none", "scalar", "rows"])
@pytest.mark.parametrize("b_bound", [128, 64])
def test_matmul_integer_packed_is_exact(a_dtype, a_shape, n, a_zero, b_bound):
    """Exact with int8_exact "1"; by default too where the CPU's int8 products cannot saturate
    (dnnl_int8_usable): 7-bit B on every CPU."""
    info = np.iinfo(a_dtype)
    k = a_shape[-1]
    a = RNG.integers(info.min, info.max + 1, size=a_shape).astype(a_dtype)
    b = RNG.integers(-b_bound, min(b_bound, 127) + 1, size=(k, n)).astype(np.int8)
    rows = a_shape[-2] if len(a_shape) > 1 else 1
    za = {"none": None, "scalar": RNG.integers(info.min, info.max + 1, size=()).astype(a_dtype),
          "rows": RNG.integers(info.min, info.max + 1, size=(rows,)).astype(a_dtype)}[a_zero]
    if a_zero == "rows" and len(a_shape) == 1:
        pytest.skip("a 1-D A has no rows")
    model = matmul_integer_model(a_dtype, a_shape, b, np.zeros((n,), np.int8),
                                 None if za is None else za.shape)
    feeds = {"a": a} if za is None else {"a": a, "za": za}
    got = graft_session(model, int8_exact=b_bound > 64).run(None, feeds)[0]
    a_wide = a.astype(np.int64)
    if za is not None:
        a_wide = a_wide - (za.astype(np.int64)[:, None] if za.ndim == 1 else za.astype(np.int64))
    expected = (a_wide @ b.astype(np.int64)).astype(np.int32)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)
    if a_zero != "rows":  # onnx.reference broadcasts a per-row zero point along the columns
        np.testing.assert_array_equal(got, ReferenceEvaluator(model).run(None, feeds)[0])


def test_int8_exact_option_is_checked():
    model = matmul_integer_model(np.uint8, (2, 8), np.ones((8, 4), np.int8), None, None)
    with pytest.raises(graft.InvalidArgument, match="int8_exact.*\"0\" or \"1\".*yes"):
        graft.InferenceSession(model.SerializeToString(),
                               providers=[("CPUExecutionProvider", {"int8_exact": "yes"})])


# --- QDQ models from quantize_static ----------------------------------------------------------

class Reader(CalibrationDataReader):
    def __init__(self, name, shape, count=4):
        rng = np.random.default_rng(1)
        self.data = iter([{name: rng.standard_normal(shape).astype(np.float32)}
                          for _ in range(count)])

    def get_next(self):
        return next(self.data, None)


class SmallCnn(torch.nn.Module):
    """The layers of a ResNet / MobileNet: strided, grouped, pointwise convolutions with and
    without ReLU, max pooling, a residual Add, global pooling and a linear head."""

    def __init__(self):
        super().__init__()
        c = torch.nn.Conv2d
        self.stem = c(3, 16, 3, stride=2, padding=1)
        self.pool = torch.nn.MaxPool2d(3, 2, 1)
        self.dw = c(16, 16, 3, padding=1, groups=16)
        self.pw = c(16, 32, 1)
        self.conv = c(32, 32, 3, padding=1)
        self.fc = torch.nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.stem(x)))
        x = torch.relu(self.pw(torch.relu(self.dw(x))))
        x = torch.relu(self.conv(x) + x)
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Mlp(torch.nn.Module):
    def __init__(self, sizes=(64, 96, 96, 10)):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = torch.relu(x)
        return x


def export(module, example, tmp_path, name):
    torch.manual_seed(0)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(module.eval(), example, str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17,
                      dynamo=False)
    return path


@pytest.fixture(scope="module")
def qdq_cnn(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qdq")
    torch.manual_seed(0)
    f32 = export(SmallCnn(), torch.randn(1, 3, 32, 32), tmp, "cnn")
    out = tmp / "cnn_int8.onnx"
    # reduce_range (7-bit weights): onnxruntime's products are exact on CPUs without VNNI too.
    quantize_static(str(f32), str(out), Reader("x", (2, 3, 32, 32)), quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    return onnx.load(str(out)), tmp


def test_qdq_cnn_fuses_into_integer_ops(qdq_cnn):
    model, tmp = qdq_cnn
    saved = tmp / "cnn_optimized.onnx"
    graft_session(model, level=2, saved=saved)
    ops = [n.op_type for n in onnx.load(str(saved)).graph.node]
    assert ops.count("QLinearConv") == 4, ops
    assert "Conv" not in ops
    # The residual sum runs on the 8-bit data too.
    assert ops.count("QLinearAdd") == 1 and "Add" not in ops, ops
    # And the head's product.
    assert ops.count("MatMulIntegerToFloat") == 1 and "Gemm" not in ops, ops
    assert "MaxPool" in ops
    # The MaxPool reads the 8-bit data: nothing dequantizes between the stem and it.
    graph = onnx.load(str(saved)).graph
    pool = next(n for n in graph.node if n.op_type == "MaxPool")
    stem = next(n for n in graph.node if n.op_type == "QLinearConv")
    assert pool.input[0] == stem.output[0]


def test_qdq_cnn_runs_channels_last(qdq_cnn):
    """At level 99 the int8 convolutions and the residual sum read and write [N, H, W, C]
    tensors (ir/transforms/nhwc_int8.cc), with Transposes only at the chain's edges, and give the
    bytes of the channels-first graph: the same oneDNN kernels run on the same data."""
    model, tmp = qdq_cnn
    saved = tmp / "cnn_nhwc.onnx"
    x = RNG.standard_normal((2, 3, 32, 32)).astype(np.float32)
    got = graft_session(model, saved=saved).run(None, {"x": x})[0]
    graph = onnx.load(str(saved)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("NhwcQLinearConv") == 4 and "QLinearConv" not in ops, ops
    # The max pooling runs channels-last too: Transposes only into the stem and out before the
    # global pooling.
    assert ops.count("NhwcMaxPool") == 1 and "MaxPool" not in ops, ops
    assert ops.count("Transpose") == 2, ops
    add = next(n for n in graph.node if n.op_type == "QLinearAdd")
    producers = {o: n.op_type for n in graph.node for o in n.output}
    assert producers[add.input[0]] in ("NhwcQLinearConv", "QLinearAdd"), producers[add.input[0]]
    np.testing.assert_array_equal(got, graft_session(model, level=2).run(None, {"x": x})[0])
    # With every product exact too (7-bit weights: the same kernels; the float fallback on
    # channels-last data runs in test_qlinear_conv_packed_matches_reference's 8-bit cases).
    exact = graft_session(model, int8_exact=True).run(None, {"x": x})[0]
    np.testing.assert_array_equal(exact, graft_session(model, level=2, int8_exact=True)
                                  .run(None, {"x": x})[0])


@pytest.mark.parametrize("batch", [1, 3])
def test_qdq_cnn_matches_onnxruntime(qdq_cnn, batch):
    model, _ = qdq_cnn
    x = RNG.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    got = graft_session(model).run(None, {"x": x})[0]
    want = ort_run(model, {"x": x})[0]
    unfused = graft_session(model, level=0).run(None, {"x": x})[0]
    # The output is dequantized from the head's 8-bit result: a few of its steps apart at most.
    step = numpy_helper.to_array(next(t for t in model.graph.initializer
                                      if t.name.startswith("y") and t.name.endswith("scale")))
    for other in (want, unfused):
        assert np.abs(got - other).max() <= 4 * step + 1e-6, np.abs(got - other).max() / step
    assert np.argmax(got, 1).tolist() == np.argmax(want, 1).tolist() or batch > 1


def qdq_add_model(dtype, a_shape, b_shape, relu, y_zero):
    """DequantizeLinear(a), DequantizeLinear(b) -> Add [-> Relu] -> QuantizeLinear."""
    t = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inits = [numpy_helper.from_array(np.array(v, np.float32), n)
             for n, v in (("sa", 0.031), ("sb", 0.017), ("sy", 0.043))]
    inits += [numpy_helper.from_array(np.array(v, dtype), n)
              for n, v in (("za", 3 if dtype == np.int8 else 131), ("zb", -7 if dtype == np.int8 else 90),
                           ("zy", y_zero))]
    nodes = [helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["fa"]),
             helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["fb"]),
             helper.make_node("Add", ["fa", "fb"], ["sum"])]
    if relu:
        nodes.append(helper.make_node("Relu", ["sum"], ["act"]))
    nodes.append(helper.make_node("QuantizeLinear", ["act" if relu else "sum", "sy", "zy"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", t, list(a_shape)),
                                           helper.make_tensor_value_info("b", t, list(b_shape))],
                              [helper.make_tensor_value_info("y", t, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return model


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("a_shape,b_shape", [((2, 8, 5, 7), (2, 8, 5, 7)), ((2, 8, 5, 7), (8, 1, 1)),
                                             ((1, 3, 4), (2, 1, 3, 1)), ((), (3, 5))])
@pytest.mark.parametrize("relu", [False, True])
def test_qdq_add_becomes_qlinear_add(tmp_path, dtype, a_shape, b_shape, relu):
    info = np.iinfo(dtype)
    y_zero = info.min if relu else (5 if dtype == np.int8 else 120)
    model = qdq_add_model(dtype, a_shape, b_shape, relu, y_zero)
    feeds = {"a": RNG.integers(info.min, info.max + 1, size=a_shape).astype(dtype),
             "b": RNG.integers(info.min, info.max + 1, size=b_shape).astype(dtype)}
    saved = tmp_path / "add.onnx"
    got = graft_session(model, saved=saved).run(None, feeds)[0]
    ops = [n.op_type for n in onnx.load(str(saved)).graph.node]
    assert ops == ["QLinearAdd"], ops
    # The fused kernel computes each element as the three nodes do, in float: the same bytes.
    unfused = graft_session(model, level=0).run(None, feeds)[0]
    np.testing.assert_array_equal(got, unfused)
    within_one_step(got, np.asarray(ReferenceEvaluator(model).run(None, feeds)[0]), 0.98)
    within_one_step(got, ort_run(model, feeds)[0], 0.98)


def test_qdq_add_with_a_relu_above_the_zero_point_is_not_fused(tmp_path):
    model = qdq_add_model(np.uint8, (4, 4), (4, 4), True, 10)
    saved = tmp_path / "add.onnx"
    graft_session(model, saved=saved)
    ops = [n.op_type for n in onnx.load(str(saved)).graph.node]
    assert "QLinearAdd" not in ops and "Relu" in ops, ops


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("attrs", [{"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
                                   {"kernel_shape": [2, 3], "dilations": [2, 1], "ceil_mode": 1,
                                    "strides": [2, 2]},
                                   {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"}])
def test_max_pool_between_int8_convolutions_runs_channels_last(tmp_path, dtype, attrs):
    """QLinearConv -> MaxPool -> QLinearConv: the pool reads and writes [N, H, W, C]."""
    w = RNG.integers(-60, 61, size=(6, 5, 1, 1)).astype(np.int8)
    first = qlinear_conv_model(dtype, (2, 5, 11, 9), w, np.array(0.01, np.float32), None, {},
                               0, 0)
    g = first.graph
    g.node.append(helper.make_node("MaxPool", ["y"], ["p"], **attrs))
    w2 = numpy_helper.from_array(RNG.integers(-60, 61, size=(4, 6, 1, 1)).astype(np.int8), "w2")
    g.initializer.append(w2)
    g.node.append(helper.make_node("QLinearConv", ["p", "sy", "zy", "w2", "sw", "zw", "sy", "zy"],
                                   ["out"]))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(
        "out", helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), None))
    x = RNG.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, size=(2, 5, 11, 9)).astype(dtype)
    saved = tmp_path / "pool.onnx"
    got = graft_session(first, saved=saved).run(None, {"x": x})[0]
    ops = [n.op_type for n in onnx.load(str(saved)).graph.node]
    assert ops == ["Transpose", "NhwcQLinearConv", "NhwcMaxPool", "NhwcQLinearConv", "Transpose"], ops
    np.testing.assert_array_equal(got, graft_session(first, level=2).run(None, {"x": x})[0])
    within_one_step(got, ort_run(first, {"x": x})[0], 0.98)


def test_qlinear_add_errors():
    model = qdq_add_model(np.uint8, ("n", 3), ("m", "k"), False, 0)
    sess = graft_session(model)
    with pytest.raises((graft.Fail, graft.InvalidArgument), match="QLinearAdd.*broadcast|QLinearAdd.*shape"):
        sess.run(None, {"a": np.zeros((2, 3), np.uint8), "b": np.zeros((4, 5), np.uint8)})


@pytest.mark.parametrize("per_channel", [False, True])
def test_qdq_gemm_becomes_matmul_integer_to_float(tmp_path, per_channel):
    """Linear layers exported as Gemm (weights [N, K], transB 1) with an int32 bias."""
    torch.manual_seed(0)
    f32 = export(Mlp(), torch.randn(4, 64), tmp_path, "mlp")
    assert "Gemm" in [n.op_type for n in onnx.load(str(f32)).graph.node]
    out = tmp_path / "mlp_int8.onnx"
    quantize_static(str(f32), str(out), Reader("x", (4, 64)), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, reduce_range=True)
    model = onnx.load(str(out))
    saved = tmp_path / "mlp_optimized.onnx"
    x = RNG.standard_normal((5, 64)).astype(np.float32)
    got = graft_session(model, saved=saved).run(None, {"x": x})[0]
    ops = [n.op_type for n in onnx.load(str(saved)).graph.node]
    assert ops.count("MatMulIntegerToFloat") == 3 and "Gemm" not in ops, ops
    # The integer products are exact (7-bit weights); the float ones around them round in
    # another order, which may move a requantized value by a step.
    unfused = graft_session(model, level=0).run(None, {"x": x})[0]
    step = np.abs(unfused).max() / 127
    np.testing.assert_allclose(got, unfused, atol=3 * step)
    np.testing.assert_allclose(got, ort_run(model, {"x": x})[0], atol=3 * step)


def test_qdq_matmul_becomes_qlinear_matmul(tmp_path):
    torch.manual_seed(0)
    f32 = export(Mlp(), torch.randn(4, 64), tmp_path, "mlp")
    out = tmp_path / "mlp_int8.onnx"
    quantize_static(str(f32), str(out), Reader("x", (4, 64)), quant_format=QuantFormat.QDQ,
                    per_channel=False, reduce_range=True, op_types_to_quantize=["MatMul"],
                    extra_options={"ActivationSymmetric": False})
    model = onnx.load(str(out))
    saved = tmp_path / "mlp_optimized.onnx"
    x = RNG.standard_normal((4, 64)).astype(np.float32)
    got = graft_session(model, saved=saved).run(None, {"x": x})[0]
    ops = [n.op_type for n in onnx.load(str(saved)).graph.node]
    if "MatMul" in [n.op_type for n in model.graph.node]:
        assert "QLinearMatMul" in ops, ops
    unfused = graft_session(model, level=0).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, unfused, atol=0.05 * np.abs(unfused).max())
    np.testing.assert_allclose(got, ort_run(model, {"x": x})[0], atol=0.05 * np.abs(unfused).max())


# --- dynamically quantized models (quantize_dynamic) -------------------------------------------

class AttentionBlock(torch.nn.Module):
    """A Transformer encoder layer's projections: q, k, v, attention, output and feed-forward."""

    def __init__(self, d=64, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.out = torch.nn.Linear(d, d)
        self.ff1 = torch.nn.Linear(d, 4 * d)
        self.ff2 = torch.nn.Linear(4 * d, d)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        split = lambda t: t.reshape(b, s, self.heads, d // self.heads).transpose(1, 2)  # noqa
        att = torch.softmax(split(q) @ split(k).transpose(-1, -2) / (d // self.heads) ** 0.5, -1)
        x = x + self.out((att @ split(v)).transpose(1, 2).reshape(b, s, d))
        return x + self.ff2(torch.relu(self.ff1(x)))


@pytest.mark.parametrize("module,shape", [(Mlp((64, 128, 128, 10)), (8, 64)),
                                          (AttentionBlock(), (2, 16, 64))])
def test_dynamic_quantized_matches_onnxruntime_and_reference(tmp_path, module, shape):
    torch.manual_seed(0)
    f32 = export(module, torch.randn(*shape), tmp_path, "float")
    out = tmp_path / "int8.onnx"
    quantize_dynamic(str(f32), str(out), weight_type=QuantType.QInt8, reduce_range=True)
    model = onnx.load(str(out))
    assert "MatMulInteger" in [n.op_type for n in model.graph.node]
    x = RNG.standard_normal(shape).astype(np.float32)
    saved = tmp_path / "optimized.onnx"
    got = graft_session(model, saved=saved).run(None, {"x": x})[0]
    ops = [n.op_type for n in onnx.load(str(saved)).graph.node]
    assert "MatMulIntegerToFloat" in ops and "MatMulInteger" not in ops, ops
    reference = np.asarray(ReferenceEvaluator(model).run(None, {"x": x})[0])
    want = ort_run(model, {"x": x})[0]
    # The integer products are exact; the float ops around them round in another order, and a
    # float difference in front of a DynamicQuantizeLinear may move a value by one step.
    scale = np.abs(reference).max()
    np.testing.assert_allclose(got, reference, atol=2e-3 * scale)
    np.testing.assert_allclose(got, want, atol=2e-2 * scale)
