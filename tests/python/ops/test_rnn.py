"""CPU recurrent kernels (RNN, GRU, LSTM) against the ONNX reference implementation, and against
onnxruntime for what the reference ignores (activations, clip, sequence_lens, input_forget)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import graft

RNG = np.random.default_rng(0)
ERRORS = (graft.Fail, graft.InvalidArgument, graft.NotImplemented)
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
OUTPUTS = {"RNN": 2, "GRU": 2, "LSTM": 3}


def make_model(op, inputs, attrs, opset, n_outputs):
    node = helper.make_node(op, [n if v is not None else "" for n, v in inputs.items()],
                            [f"y{i}" for i in range(n_outputs)], **attrs)
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
        for n, v in inputs.items() if v is not None]
    outputs = [helper.make_empty_tensor_value_info(f"y{i}") for i in range(n_outputs)]
    model = helper.make_model(helper.make_graph([node], "g", graph_inputs, outputs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(model)
    for out, found in zip(model.graph.output, inferred.graph.output):
        if found.type.WhichOneof("value") is None:
            found = helper.make_tensor_value_info(found.name, onnx.TensorProto.FLOAT, None)
        out.CopyFrom(found)
    return model


def run_graft(model, inputs):
    feeds = {k: v for k, v in inputs.items() if v is not None}
    return graft.InferenceSession(model.SerializeToString()).run(None, feeds)


def recurrent_inputs(op, seq, batch, input_size, hidden, dirs, dtype=np.float32, layout=0,
                     bias=True, initial=True, peepholes=False, lengths=None):
    gates = GATES[op]

    def rand(*shape):
        return RNG.uniform(-1, 1, size=shape).astype(dtype)

    state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
    inputs = {
        "X": rand(batch, seq, input_size) if layout else rand(seq, batch, input_size),
        "W": rand(dirs, gates * hidden, input_size),
        "R": rand(dirs, gates * hidden, hidden),
        "B": rand(dirs, 2 * gates * hidden) if bias else None,
        "sequence_lens": None if lengths is None else np.array(lengths, np.int32),
        "initial_h": rand(*state) if initial else None,
    }
    if op == "LSTM":
        inputs["initial_c"] = rand(*state) if initial else None
        inputs["P"] = rand(dirs, 3 * hidden) if peepholes else None
    # Trailing omitted inputs are dropped from the node.
    while list(inputs.values())[-1] is None:
        inputs.popitem()
    return inputs


def assert_close(actual, expected, tol):
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=tol,
                               atol=tol)


def check_reference(op, inputs, attrs, opset=14, tol=1e-5):
    model = make_model(op, inputs, attrs, opset, OUTPUTS[op])
    feeds = {k: v for k, v in inputs.items() if v is not None}
    expected = [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]
    for a, e in zip(run_graft(model, inputs), expected):
        assert_close(a, e, tol)


def check_onnxruntime(op, inputs, attrs, opset=14, tol=1e-5, n_outputs=None):
    model = make_model(op, inputs, attrs, opset, n_outputs or OUTPUTS[op])
    feeds = {k: v for k, v in inputs.items() if v is not None}
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    for a, e in zip(run_graft(model, inputs), session.run(None, feeds)):
        assert_close(a, e, tol)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10),
                                       (np.float16, 1e-2)])
def test_against_reference(op, direction, layout, dtype, tol):
    dirs = 2 if direction == "bidirectional" else 1
    inputs = recurrent_inputs(op, 4, 3, 5, 6, dirs, dtype, layout, peepholes=True)
    check_reference(op, inputs, {"hidden_size": 6, "direction": direction, "layout": layout},
                    tol=tol)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_defaults_and_old_opsets(op):
    inputs = recurrent_inputs(op, 3, 2, 4, 5, 1, bias=False, initial=False)
    for opset in (7, 22):
        check_reference(op, inputs, {"hidden_size": 5}, opset=opset)
    # hidden_size may be left out; it is read from R.
    check_reference(op, inputs, {}, opset=14)


@pytest.mark.parametrize("linear_before_reset", [0, 1])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_gru_linear_before_reset(linear_before_reset, direction):
    dirs = 2 if direction == "bidirectional" else 1
    inputs = recurrent_inputs("GRU", 5, 2, 3, 4, dirs)
    attrs = {"hidden_size": 4, "direction": direction, "linear_before_reset": linear_before_reset}
    check_reference("GRU", inputs, attrs)
    check_onnxruntime("GRU", inputs, attrs)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_sequence_lens(op, direction):
    dirs = 2 if direction == "bidirectional" else 1
    inputs = recurrent_inputs(op, 5, 4, 3, 4, dirs, lengths=[5, 2, 3, 1])
    check_onnxruntime(op, inputs, {"hidden_size": 4, "direction": direction})


# activation_alpha / activation_beta are consumed in order by the activations that take them.
@pytest.mark.parametrize("op,activations,alpha,beta", [
    ("RNN", ["Relu"], None, None),
    ("RNN", ["Affine", "LeakyRelu"], [0.5, 0.2], [0.1, 0.0]),
    ("GRU", ["HardSigmoid", "Softsign", "Sigmoid", "ScaledTanh"], [0.3, 0.9], [0.4, 1.1]),
    ("LSTM", ["Sigmoid", "Elu", "Softplus"], [0.7], None),
    ("LSTM", ["HardSigmoid", "ThresholdedRelu", "Tanh", "Sigmoid", "Relu", "Softsign"],
     [0.25, 0.1], [0.45]),
    ("LSTM", ["HardSigmoid", "Tanh", "Tanh"], None, None),
])
def test_activations(op, activations, alpha, beta):
    per_direction = {"RNN": 1, "GRU": 2, "LSTM": 3}[op]
    direction = "bidirectional" if len(activations) > per_direction else "forward"
    dirs = 2 if direction == "bidirectional" else 1
    inputs = recurrent_inputs(op, 4, 2, 3, 4, dirs)
    attrs = {"hidden_size": 4, "direction": direction, "activations": activations}
    if alpha is not None:
        attrs["activation_alpha"] = alpha
    if beta is not None:
        attrs["activation_beta"] = beta
    check_onnxruntime(op, inputs, attrs)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_clip(op):
    inputs = recurrent_inputs(op, 4, 2, 3, 4, 2)
    inputs["X"] *= 5
    check_onnxruntime(op, inputs, {"hidden_size": 4, "direction": "bidirectional", "clip": 0.5})


def test_lstm_input_forget_and_peepholes():
    inputs = recurrent_inputs("LSTM", 4, 3, 3, 5, 2, peepholes=True, lengths=[4, 3, 2])
    attrs = {"hidden_size": 5, "direction": "bidirectional", "input_forget": 1}
    check_onnxruntime("LSTM", inputs, attrs)


def test_omitted_outputs():
    inputs = recurrent_inputs("LSTM", 3, 2, 3, 4, 1)
    model = make_model("LSTM", inputs, {"hidden_size": 4}, 14, 3)
    model.graph.node[0].output[0] = ""
    model.graph.node[0].output[2] = ""
    del model.graph.output[2]
    del model.graph.output[0]
    feeds = {k: v for k, v in inputs.items() if v is not None}
    expected = ReferenceEvaluator(make_model("LSTM", inputs, {"hidden_size": 4}, 14, 2)).run(
        None, feeds)
    (y_h,) = run_graft(model, inputs)
    assert_close(y_h, expected[1], 1e-5)


def test_errors():
    inputs = recurrent_inputs("GRU", 3, 2, 3, 4, 1)
    with pytest.raises(ERRORS, match="W"):  # W is built for hidden size 4, not 5
        run_graft(make_model("GRU", inputs, {"hidden_size": 5}, 14, 2), inputs)
    with pytest.raises(ERRORS, match="activation"):
        run_graft(make_model("GRU", inputs, {"activations": ["Sigmoid", "Cube"]}, 14, 2), inputs)
    with pytest.raises(ERRORS, match="direction"):
        run_graft(make_model("GRU", inputs, {"direction": "sideways"}, 14, 2), inputs)
    bad = recurrent_inputs("RNN", 3, 2, 3, 4, 1, lengths=[3, 4])
    with pytest.raises(ERRORS, match="sequence_lens"):
        run_graft(make_model("RNN", bad, {"hidden_size": 4}, 14, 2), bad)
    bidirectional = recurrent_inputs("LSTM", 3, 2, 3, 4, 2)
    with pytest.raises(ERRORS, match="W"):  # two directions of weights for a forward LSTM
        run_graft(make_model("LSTM", bidirectional, {"hidden_size": 4}, 14, 3), bidirectional)
