"""graft.autodiff.gradient_model, the `graft grad` command, and the errors they raise."""

import os
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import graft
import graft.autodiff

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _mlp(batch="N") -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((4, 8)), "b1": rng.standard_normal(8),
              "W2": rng.standard_normal((8, 3)), "b2": rng.standard_normal(3)}
    params = {k: v.astype(np.float32) for k, v in params.items()}
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"], name="fc1"),
             helper.make_node("Add", ["h", "b1"], ["h1"], name="fc1_bias"),
             helper.make_node("Relu", ["h1"], ["r"], name="act"),
             helper.make_node("MatMul", ["r", "W2"], ["o"], name="fc2"),
             helper.make_node("Add", ["o", "b2"], ["y"], name="fc2_bias"),
             helper.make_node("Mul", ["y", "y"], ["sq"], name="square"),
             helper.make_node("ReduceMean", ["sq"], ["loss"], keepdims=0, name="mean")]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
                              [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])],
                              [numpy_helper.from_array(v, k) for k, v in params.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model, params


def test_mlp_gradients_match_torch_and_run_in_onnxruntime():
    model, params = _mlp()
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    grad_model = graft.autodiff.gradient_model(model, loss="loss")
    onnx.checker.check_model(grad_model, full_check=True)
    names = [o.name for o in grad_model.graph.output]
    assert names == ["loss", "W1_grad", "b1_grad", "W2_grad", "b2_grad"]
    ours = dict(zip(names, graft.InferenceSession(grad_model.SerializeToString()).run(None, {"x": x})))
    theirs = dict(zip(names, ort.InferenceSession(grad_model.SerializeToString(),
                                                  providers=["CPUExecutionProvider"]).run(None, {"x": x})))
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    y = torch.relu(torch.tensor(x) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    (y * y).mean().backward()
    for k in params:
        want = t[k].grad.numpy()
        scale = np.abs(want).max()
        assert np.abs(ours[f"{k}_grad"] - want).max() / scale < 1e-4, k
        assert np.abs(theirs[f"{k}_grad"] - ours[f"{k}_grad"]).max() / scale < 1e-4, k


def test_selected_parameters_only():
    model, _ = _mlp(batch=5)
    grad_model = graft.autodiff.gradient_model(model, loss="loss", wrt=["W2"])
    assert [o.name for o in grad_model.graph.output] == ["loss", "W2_grad"]


def test_missing_rule_names_the_op_and_the_path():
    nodes = [helper.make_node("Det", ["m"], ["d"], name="det"),
             helper.make_node("Mul", ["d", "d"], ["loss"], name="square")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("m", TensorProto.FLOAT, [3, 3])],
                              [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(graft.NotImplemented) as info:
        graft.autodiff.gradient_model(model, loss="loss", wrt=["m"])
    text = str(info.value)
    assert "no gradient rule for op Det" in text
    assert "loss 'loss' <- [Mul] node 'square' <- [Det] node 'det'" in text


def test_unknown_names_are_refused():
    model, _ = _mlp()
    with pytest.raises(graft.InvalidArgument, match="loss 'nope'"):
        graft.autodiff.gradient_model(model, loss="nope")
    with pytest.raises(graft.InvalidArgument, match="'W9'"):
        graft.autodiff.gradient_model(model, loss="loss", wrt=["W9"])


def test_command_line(tmp_path):
    model, _ = _mlp()
    src, dst = tmp_path / "mlp.onnx", tmp_path / "mlp_grad.onnx"
    onnx.save(model, src)
    cli = os.path.join(ROOT, "build", "graft")
    out = subprocess.run([cli, "grad", str(src), "--loss", "loss", "--wrt", "W1,b2", "-o", str(dst)],
                         capture_output=True, text=True, check=True).stdout
    assert "W1_grad" in out and "b2_grad" in out
    saved = onnx.load(dst)
    onnx.checker.check_model(saved)
    assert [o.name for o in saved.graph.output] == ["loss", "W1_grad", "b2_grad"]
    bad = subprocess.run([cli, "grad", str(src), "--loss", "missing", "-o", str(dst)], capture_output=True, text=True)
    assert bad.returncode == 1 and "loss 'missing'" in bad.stderr
