"""The optimizer step is one fused com.graft node per model, declared as a model-local function
with a standard-op body: the step model passes onnx.checker's full check, onnxruntime (which runs
the body) computes graft's update, and TrainingSession updates its state in place."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import graft
import graft.autodiff
import graft.optim
from graft.training import TrainingSession

CONFIGS = {
    "sgd": ("SGDUpdate", dict(kind="sgd")),
    "sgd_nesterov_wd": ("SGDUpdate", dict(kind="sgd", momentum=0.9, nesterov=True, weight_decay=0.01)),
    "adam_l2_clipped": ("AdamUpdate", dict(kind="adam", weight_decay=0.1, max_grad_norm=0.3)),
    "adamw": ("AdamUpdate", dict(kind="adamw", weight_decay=0.3, eps=1e-6)),
    "adagrad": ("AdagradUpdate", dict(kind="adagrad", lr_decay=0.05, weight_decay=0.1)),
    "rmsprop_centered_momentum": ("RMSpropUpdate", dict(kind="rmsprop", centered=True, momentum=0.9, alpha=0.9)),
    "lamb": ("LAMBUpdate", dict(kind="lamb", weight_decay=0.01, eps=1e-6)),
}


def _mlp(layers: int, dtypes=None, seed: int = 0):
    """A chain of `layers` Gemm layers (weight and bias each) with a mean-square loss; layer i
    computes in dtypes[i] (float by default), cast back to float between layers."""
    rng = np.random.default_rng(seed)
    dtypes = dtypes or [np.float32] * layers
    widths = [5] + [4] * (layers - 1) + [3]
    nodes, inits, h = [], [], "x"
    for i, dt in enumerate(dtypes):
        w = (rng.standard_normal((widths[i + 1], widths[i])) * 0.5).astype(dt)
        b = (rng.standard_normal(widths[i + 1]) * 0.1).astype(dt)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        to = helper.np_dtype_to_tensor_dtype(np.dtype(dt))
        nodes += [helper.make_node("Cast", [h], [f"in{i}"], to=to),
                  helper.make_node("Gemm", [f"in{i}", f"w{i}", f"b{i}"], [f"z{i}"], transB=1),
                  helper.make_node("Cast", [f"z{i}"], [f"h{i}"], to=TensorProto.FLOAT)]
        h = f"h{i}"
    nodes += [helper.make_node("Sub", [h, "target"], ["err"]),
              helper.make_node("Mul", ["err", "err"], ["sq"]),
              helper.make_node("ReduceMean", ["sq"], ["loss"], keepdims=0)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 5]),
                                             helper.make_tensor_value_info("target", TensorProto.FLOAT, [8, 3])],
                              [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model, [t.name for t in inits]


def _step_model(layers: int, options: dict, dtypes=None):
    model, params = _mlp(layers, dtypes)
    return graft.optim.add_optimizer(graft.autodiff.gradient_model(model, loss="loss"), params, **options), params


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("layers", [1, 3])
def test_one_fused_node_declared_as_a_function(name, layers):
    op_type, options = CONFIGS[name]
    step_model, params = _step_model(layers, options)
    onnx.checker.check_model(step_model, full_check=True)
    fused = [n for n in step_model.graph.node if n.domain == "com.graft" and n.op_type.endswith("Update")]
    assert [n.op_type for n in fused] == [op_type], "one update node, whatever the parameter count"
    assert fused[0].output[:len(params)] == [p + ".new" for p in params]
    functions = [f for f in step_model.functions if f.name == op_type]
    assert len(functions) == 1 and functions[0].domain == "com.graft"
    assert len(functions[0].input) == len(fused[0].input) and len(functions[0].output) == len(fused[0].output)
    assert {"": 18, "com.graft": 1}.items() <= {o.domain: o.version for o in step_model.opset_import}.items()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_onnxruntime_runs_the_function_body_to_graft_s_update(name):
    _, options = CONFIGS[name]
    step_model, params = _step_model(2, options)
    ours = graft.InferenceSession(step_model.SerializeToString())
    theirs = ort.InferenceSession(step_model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in step_model.graph.output]
    rng = np.random.default_rng(1)
    inits = {t.name: numpy_helper.to_array(t) for t in step_model.graph.initializer}
    feeds = {"graft.lr": np.array(0.05, np.float32), "graft.step": np.array(0, np.int64),
             **{p: inits[p] for p in params}}
    for step in range(4):  # later steps have non-zero state and bias corrections
        feeds["x"] = rng.standard_normal((8, 5)).astype(np.float32)
        feeds["target"] = rng.standard_normal((8, 3)).astype(np.float32)
        got = dict(zip(names, ours.run(None, feeds)))
        want = dict(zip(names, theirs.run(None, feeds)))
        for k in names:
            scale = max(np.abs(want[k]).max(), 1e-6)
            assert np.abs(got[k] - want[k]).max() / scale < 1e-5, f"{name} step {step}: {k}"
        for k in names:
            if k.endswith(".new"):
                feeds[k[: -len(".new")]] = got[k]


def test_one_node_updates_float_and_double_parameters():
    step_model, params = _step_model(2, dict(kind="adam", max_grad_norm=0.5), dtypes=[np.float32, np.float64])
    onnx.checker.check_model(step_model, full_check=True)
    assert sum(n.domain == "com.graft" for n in step_model.graph.node) == 1
    names = [o.name for o in step_model.graph.output]
    rng = np.random.default_rng(2)
    feeds = {"x": rng.standard_normal((8, 5)).astype(np.float32),
             "target": rng.standard_normal((8, 3)).astype(np.float32),
             "graft.lr": np.array(0.05, np.float32), "graft.step": np.array(3, np.int64)}
    for t in step_model.graph.initializer:
        value = numpy_helper.to_array(t)
        feeds[t.name] = value if t.name in params else np.abs(rng.standard_normal(value.shape)).astype(value.dtype)
    got = dict(zip(names, graft.InferenceSession(step_model.SerializeToString()).run(None, feeds)))
    want = dict(zip(names, ort.InferenceSession(step_model.SerializeToString(),
                                                providers=["CPUExecutionProvider"]).run(None, feeds)))
    assert got["w1.new"].dtype == np.float64 and got["w0.new"].dtype == np.float32
    for k in names:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_training_session_updates_state_in_place():
    model, params = _mlp(3)
    sess = TrainingSession(model, loss="loss", optimizer="adamw", lr=0.01)
    rng = np.random.default_rng(3)

    def batch():
        return {"x": rng.standard_normal((8, 5)).astype(np.float32),
                "target": rng.standard_normal((8, 3)).astype(np.float32)}

    def addresses():  # the arrays are views of the state; none survives this call
        return {k: v.__array_interface__["data"][0] for k, v in sess.state().items()}

    sess.train_step(batch())
    before = addresses()
    assert len(before) == 3 * len(params)
    for _ in range(3):
        sess.train_step(batch())
    assert addresses() == before
    # A state array someone holds is never overwritten: that step writes to a new buffer.
    held = sess.state()["w0"]
    snapshot = held.copy()
    sess.train_step(batch())
    np.testing.assert_array_equal(held, snapshot)
    assert sess.state()["w0"].__array_interface__["data"][0] != held.__array_interface__["data"][0]
