"""examples/cpp/finetune.cc: the C++ training API (train/training_api.h) fine-tunes an MLP on
scikit-learn's digits from generate_artifacts' files, step for step like graft.training.api in
Python, and exports a model that graft and onnxruntime run alike."""

import os
import re
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits

import graft
from graft.checkpoint import load_checkpoint
from graft.training import LossType, OptimType, generate_artifacts, write_dataset
from graft.training.api import CheckpointState, Module, Optimizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY = os.environ.get("GRAFT_FINETUNE", os.path.join(ROOT, "build", "examples", "graft_finetune"))
EPOCHS, BATCH, LR = 3, 32, 0.01


def mlp(seed=0):
    """64 -> 32 -> ReLU -> 10, weights laid out as torch.nn.Linear's."""
    rng = np.random.default_rng(seed)
    inits = []
    for name, (n_out, n_in) in {"fc1": (32, 64), "fc2": (10, 32)}.items():
        bound = 1 / np.sqrt(n_in)
        inits.append(numpy_helper.from_array(rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32), f"{name}.weight"))
        inits.append(numpy_helper.from_array(rng.uniform(-bound, bound, n_out).astype(np.float32), f"{name}.bias"))
    nodes = [helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["a"]),
             helper.make_node("Gemm", ["a", "fc2.weight", "fc2.bias"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    return x[:1200], y[:1200], x[1200:], y[1200:]


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, digits):
    assert os.path.exists(BINARY), f"{BINARY} is missing: build it with `bash scripts/build.sh graft_finetune`"
    tmp = tmp_path_factory.mktemp("finetune")
    model = mlp()
    generate_artifacts(model, loss=LossType.CrossEntropyLoss, optimizer=OptimType.AdamW,
                       artifact_directory=tmp / "artifacts")
    x, y, _, _ = digits
    write_dataset(tmp / "train.bin", {"input": x, "labels": y})
    proc = subprocess.run([BINARY, str(tmp / "artifacts"), str(tmp / "train.bin"), str(tmp / "out"),
                           "--epochs", str(EPOCHS), "--batch", str(BATCH), "--lr", str(LR)],
                          capture_output=True, text=True, timeout=600)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    return tmp, model, proc.stdout


def test_loss_decreases_each_epoch(finetuned):
    _, _, stdout = finetuned
    losses = [float(v) for v in re.findall(r"^epoch \d+/\d+  loss (\S+)", stdout, re.M)]
    assert len(losses) == EPOCHS
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.5 * losses[0], losses


def test_parameters_match_the_python_training_api(finetuned, digits):
    tmp, _, _ = finetuned
    tensors, step, properties = load_checkpoint(tmp / "out" / "checkpoint")
    steps_per_epoch = -(-1200 // BATCH)
    assert step == EPOCHS * steps_per_epoch
    assert float(properties["graft.lr"]) == np.float32(LR)
    # AdamW's two moments per parameter travel with the parameters, so training can resume.
    params = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert set(tensors) == set(params) | {f"{p}.adamw.{slot}" for p in params for slot in "mv"}

    state = CheckpointState.load_checkpoint(tmp / "artifacts" / "checkpoint")
    module = Module(tmp / "artifacts" / "training_model.onnx", state, tmp / "artifacts" / "eval_model.onnx")
    optimizer = Optimizer(tmp / "artifacts" / "optimizer_model.onnx", module)
    optimizer.set_learning_rate(LR)
    x, y, _, _ = digits
    for _ in range(EPOCHS):
        for begin in range(0, len(x), BATCH):
            module(x[begin:begin + BATCH], y[begin:begin + BATCH])
            optimizer.step()
            module.lazy_reset_grad()
    assert state.step == step
    assert set(state.tensors) == set(tensors)
    for name, ours in state.tensors.items():
        print(f"{name}: max |C++ - Python| {np.abs(tensors[name] - ours).max():.3g}")
        np.testing.assert_allclose(tensors[name], ours, rtol=1e-6, atol=1e-6 * np.abs(ours).max(), err_msg=name)


def test_exported_model_runs_in_graft_and_onnxruntime(finetuned, digits):
    tmp, model, _ = finetuned
    path = str(tmp / "out" / "inference.onnx")
    exported = onnx.load(path)
    onnx.checker.check_model(exported)
    assert [i.name for i in exported.graph.input] == ["input"]
    assert [o.name for o in exported.graph.output] == ["logits"]
    _, _, x_test, y_test = digits
    ours = graft.InferenceSession(path).run(None, {"input": x_test})[0]
    theirs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x_test})[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    untrained = graft.InferenceSession(model.SerializeToString()).run(None, {"input": x_test})[0]
    accuracy = float(np.mean(ours.argmax(1) == y_test))
    before = float(np.mean(untrained.argmax(1) == y_test))
    print(f"test accuracy: {before:.3f} untrained, {accuracy:.3f} after fine-tuning")
    assert accuracy > before + 0.5 and accuracy > 0.85


def test_errors_name_the_file(tmp_path, finetuned):
    tmp, _, _ = finetuned
    proc = subprocess.run([BINARY, str(tmp_path / "nowhere"), str(tmp / "train.bin"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "nowhere" in proc.stderr, proc.stderr
    write_dataset(tmp_path / "bad.bin", {"input": np.zeros((4, 64), np.float32)})
    proc = subprocess.run([BINARY, str(tmp / "artifacts"), str(tmp_path / "bad.bin"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "'labels'" in proc.stderr, proc.stderr
    proc = subprocess.run([BINARY, str(tmp / "artifacts")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "usage" in proc.stderr
