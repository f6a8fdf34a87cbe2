"""CPU ai.onnx.preview.training optimizers (Adagrad, Adam, Momentum) against the ONNX reference
implementation, over several update steps with two tensors at once."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import graft

DOMAIN = "ai.onnx.preview.training"
ERRORS = (graft.Fail, graft.InvalidArgument, graft.NotImplemented)
# op -> number of state tensors per optimized tensor
STATES = {"Adagrad": 1, "Adam": 2, "Momentum": 1}
CASES = [
    ("Adagrad", {"decay_factor": 0.1, "epsilon": 1e-5, "norm_coefficient": 0.01}),
    ("Adagrad", {}),
    ("Adam", {"alpha": 0.9, "beta": 0.95, "epsilon": 1e-7, "norm_coefficient": 0.001,
              "norm_coefficient_post": 0.01}),
    ("Adam", {}),
    ("Momentum", {"alpha": 0.9, "beta": 0.5, "norm_coefficient": 0.01, "mode": "standard"}),
    ("Momentum", {"alpha": 0.8, "beta": 0.7, "norm_coefficient": 0.02, "mode": "nesterov"}),
]


def make_model(op, attrs, dtype, shapes):
    n = len(shapes)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    groups = ["X", "G"] + [f"S{k}_" for k in range(STATES[op])]
    tensors = [f"{g}{i}" for g in groups for i in range(n)]
    outputs = [f"{g}{i}_new" for g in ["X"] + groups[2:] for i in range(n)]
    node = helper.make_node(op, ["R", "T"] + tensors, outputs, domain=DOMAIN, **attrs)
    shape_of = {name: shapes[i % n] for i, name in enumerate(tensors)}
    inputs = [helper.make_tensor_value_info("R", elem, []),
              helper.make_tensor_value_info("T", TensorProto.INT64, [])]
    inputs += [helper.make_tensor_value_info(t, elem, shape_of[t]) for t in tensors]
    outs = [helper.make_tensor_value_info(o, elem, shapes[i % n]) for i, o in enumerate(outputs)]
    graph = helper.make_graph([node], "g", inputs, outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = 8
    return model, tensors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,attrs", CASES)
def test_optimizer_steps(op, attrs, dtype):
    rng = np.random.default_rng(1)
    shapes = [[3, 4], [5]]
    model, names = make_model(op, attrs, dtype, shapes)
    session = graft.InferenceSession(model.SerializeToString())
    reference = ReferenceEvaluator(model)
    n = len(shapes)
    xs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    states = [np.zeros(s, dtype) for _ in range(STATES[op]) for s in shapes]
    ref_xs, ref_states = list(xs), list(states)
    for step in range(4):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        common = {"R": np.array(0.1, dtype), "T": np.array(step, np.int64)}
        feeds = dict(common, **dict(zip(names, xs + grads + states)))
        ref_feeds = dict(common, **dict(zip(names, ref_xs + grads + ref_states)))
        got = session.run(None, feeds)
        want = reference.run(None, ref_feeds)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == np.dtype(dtype)
            np.testing.assert_allclose(g, w.astype(dtype), rtol=1e-5, atol=1e-6)
        xs, states = got[:n], got[n:]
        ref_xs, ref_states = [w.astype(dtype) for w in want[:n]], [w.astype(dtype) for w in want[n:]]


def test_single_tensor_momentum_matches_formula():
    attrs = {"alpha": 0.9, "beta": 0.1, "norm_coefficient": 0.0, "mode": "standard"}
    model, names = make_model("Momentum", attrs, np.float32, [[4]])
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    g = np.array([0.5, -0.5, 1.0, 0.0], np.float32)
    v = np.ones(4, np.float32)
    x_new, v_new = graft.InferenceSession(model.SerializeToString()).run(
        None, {"R": np.array(0.1, np.float32), "T": np.array(0, np.int64),
               names[0]: x, names[1]: g, names[2]: v})
    np.testing.assert_allclose(v_new, 0.9 * v + g, rtol=1e-6)  # beta is 1 on the first step
    np.testing.assert_allclose(x_new, x - 0.1 * (0.9 * v + g), rtol=1e-6)


def test_mismatched_gradient_shape_raises():
    model, names = make_model("Adagrad", {}, np.float32, [[3]])
    session = graft.InferenceSession(model.SerializeToString())
    feeds = {"R": np.array(0.1, np.float32), "T": np.array(0, np.int64),
             names[0]: np.ones(3, np.float32), names[1]: np.ones(4, np.float32),
             names[2]: np.zeros(3, np.float32)}
    with pytest.raises(ERRORS):
        session.run(None, feeds)


def test_non_scalar_rate_raises():
    model, names = make_model("Adam", {}, np.float32, [[2]])
    session = graft.InferenceSession(model.SerializeToString())
    feeds = {"R": np.ones(2, np.float32), "T": np.array(1, np.int64)}
    feeds.update({name: np.ones(2, np.float32) for name in names})
    with pytest.raises(ERRORS):
        session.run(None, feeds)
