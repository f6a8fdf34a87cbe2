"""MatMul, Gemm and com.graft.FusedMatMul against NumPy, with the weight an initializer (packed once
when the session is built, providers/cpu/linalg/packed_gemm.h) and as a graph input (the plain
GEMM), with and without bias, with each activation of FusedMatMul."""

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graft


def erf(x):
    return np.vectorize(math.erf)(x.astype(np.float64))


ACTIVATIONS = {
    None: lambda x: x,
    "Relu": lambda x: np.maximum(x, 0.0),
    "Gelu": lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0))),
    "Tanh": np.tanh,
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


def run(node, inputs, constants, out_rank=None):
    """Runs one node with `inputs` fed and `constants` as initializers, without graph rewrites."""
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, value.shape) for name, value in inputs.items()],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(value, name) for name, value in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.graft", 1)])
    opts = graft.SessionOptions()
    opts.graph_optimization_level = graft.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = graft.InferenceSession(model.SerializeToString(), sess_options=opts)
    return session.run(None, inputs)[0]


def split(values, constant):
    """The operands after the first as initializers (`constant`) or as fed inputs."""
    first = dict(list(values.items())[:1])
    rest = dict(list(values.items())[1:])
    return (first, rest) if constant else ({**first, **rest}, {})


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("constant", [True, False])
@pytest.mark.parametrize("a_shape,b_shape", [
    ((1, 784), (784, 1024)),     # batch 1 of an MLP
    ((8, 784), (784, 10)),       # a narrow output, one partial panel
    ((13, 37), (37, 50)),        # rows and columns off every tile size
    ((2, 7, 33), (33, 17)),      # a batch of sequences against one weight
    ((3, 1, 4, 9), (9, 5)),      # more batch axes
    ((9,), (9, 20)),             # 1-D A
    ((130, 300), (300, 40)),     # several row groups and K blocks
    ((4, 0), (0, 6)),            # K = 0: zeros
])
def test_matmul(constant, a_shape, b_shape):
    rng = np.random.default_rng(0)
    values = {"a": rand(rng, *a_shape), "b": rand(rng, *b_shape)}
    inputs, constants = split(values, constant)
    got = run(helper.make_node("MatMul", ["a", "b"], ["y"]), inputs, constants)
    np.testing.assert_allclose(got, values["a"] @ values["b"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("constant", [True, False])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("bias", [None, "row", "scalar"])
@pytest.mark.parametrize("trans_b", [0, 1])
def test_fused_matmul(constant, activation, bias, trans_b):
    rng = np.random.default_rng(1)
    a, b = rand(rng, 3, 7, 45), rand(rng, 45, 70)
    values = {"a": a, "b": np.ascontiguousarray(b.T) if trans_b else b}
    want = a @ b
    if bias is not None:
        values["c"] = rand(rng, 70) if bias == "row" else rand(rng, 1)
        want = want + values["c"]
    want = ACTIVATIONS[activation](want)
    inputs, constants = split(values, constant)
    attrs = {"transB": trans_b}
    if activation:
        attrs["activation"] = activation
    node = helper.make_node("FusedMatMul", list(values), ["y"], domain="com.graft", **attrs)
    got = run(node, inputs, constants)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_fused_matmul_transposed_a_keeps_the_plain_gemm():
    rng = np.random.default_rng(2)
    a, b, c = rand(rng, 2, 6, 5), rand(rng, 6, 8), rand(rng, 8)
    node = helper.make_node("FusedMatMul", ["a", "b", "c"], ["y"], domain="com.graft", transA=1,
                            activation="Relu")
    got = run(node, {"a": a}, {"b": b, "c": c})
    np.testing.assert_allclose(got, np.maximum(np.swapaxes(a, -1, -2) @ b + c, 0), rtol=1e-4, atol=1e-4)


def test_fused_matmul_rejects_an_unknown_activation():
    rng = np.random.default_rng(3)
    node = helper.make_node("FusedMatMul", ["a", "b"], ["y"], domain="com.graft", activation="Swish")
    with pytest.raises(Exception, match="activation must be .* got 'Swish'"):
        run(node, {"a": rand(rng, 2, 3)}, {"b": rand(rng, 3, 4)})


def test_matmul_with_a_packed_weight_rejects_a_wrong_inner_dimension():
    rng = np.random.default_rng(4)
    with pytest.raises(Exception, match="MatMul"):
        run(helper.make_node("MatMul", ["a", "b"], ["y"], name="mm"), {"a": rand(rng, 2, 5)}, {"b": rand(rng, 4, 3)})


@pytest.mark.parametrize("constant", [True, False])
@pytest.mark.parametrize("c_shape", [None, (16,), (1, 16), (1,), (12, 16), (12, 1)])
@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (0, 1), (1, 0)])
def test_gemm(constant, c_shape, trans_a, trans_b):
    rng = np.random.default_rng(5)
    a, b = rand(rng, 12, 30), rand(rng, 30, 16)
    values = {"a": np.ascontiguousarray(a.T) if trans_a else a, "b": np.ascontiguousarray(b.T) if trans_b else b}
    alpha, beta = 0.5, 2.0
    want = alpha * (a @ b)
    if c_shape is not None:
        values["c"] = rand(rng, *c_shape)
        want = want + beta * values["c"]
    inputs, constants = split(values, constant)
    node = helper.make_node("Gemm", list(values), ["y"], alpha=alpha, beta=beta, transA=trans_a, transB=trans_b)
    got = run(node, inputs, constants)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
