"""BatchNormalization in training mode: its running mean and variance are buffers, not
parameters; every train_step (and forward_backward) moves them by the node's momentum towards
the batch's statistics, as the ONNX reference computes them; eval_step and the exported model
normalize with them, and onnxruntime agrees."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from graft.training import TrainingSession

STATS = ("bn.running_mean", "bn.running_var")


def model(reference: bool = False, training_mode: int = 1):
    """Conv -> BatchNormalization -> Relu -> spatial mean -> Gemm -> cross-entropy. With
    `reference`, the BatchNormalization also outputs its new running statistics."""
    rng = np.random.default_rng(0)
    inits = {"conv.weight": rng.standard_normal((4, 3, 3, 3)) * 0.3, "bn.weight": rng.uniform(0.5, 1.5, 4),
             "bn.bias": rng.standard_normal(4) * 0.1, "bn.running_mean": np.zeros(4), "bn.running_var": np.ones(4),
             "fc.weight": rng.standard_normal((5, 4)) * 0.5, "fc.bias": np.zeros(5)}
    bn_out = ["h", "rm", "rv"] if reference else ["h"]
    nodes = [helper.make_node("Conv", ["x", "conv.weight"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "bn.weight", "bn.bias", *STATS], bn_out,
                              momentum=0.8, epsilon=1e-5, training_mode=training_mode),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("ReduceMean", ["r", "axes"], ["p"], keepdims=0),
             helper.make_node("Gemm", ["p", "fc.weight", "fc.bias"], ["logits"], transB=1),
             helper.make_node("SoftmaxCrossEntropyLoss", ["logits", "labels"], ["loss"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5]),
               helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])]
    if reference:
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4]) for n in ("rm", "rv")]
    graph = helper.make_graph(
        nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 6, 6]),
                      helper.make_tensor_value_info("labels", TensorProto.INT64, ["N"])], outputs,
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()] +
        [numpy_helper.from_array(np.array([2, 3], np.int64), "axes")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def with_values(m, values):
    m = onnx.ModelProto.FromString(m.SerializeToString())
    for init in m.graph.initializer:
        if init.name in values:
            init.CopyFrom(numpy_helper.from_array(np.asarray(values[init.name], np.float32), init.name))
    return m


def batches(count=6):
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((8, 3, 6, 6)).astype(np.float32) * 2 + 1,
             "labels": rng.integers(0, 5, 8).astype(np.int64)} for _ in range(count)]


def forward_only(m):
    """`m` without its loss: the forward model generate_artifacts takes (outputs logits)."""
    g = m.graph
    kept = [n for n in g.node if n.op_type != "SoftmaxCrossEntropyLoss"]
    del g.node[:]
    g.node.extend(kept)
    outputs = [o for o in g.output if o.name == "logits"]
    del g.output[:]
    g.output.extend(outputs)
    inputs = [i for i in g.input if i.name == "x"]
    del g.input[:]
    g.input.extend(inputs)
    return m


@pytest.mark.parametrize("split", [False, True])
def test_running_statistics_follow_the_onnx_reference(split):
    sess = TrainingSession(model(), loss="loss", optimizer="sgd", lr=0.1, momentum=0.9)
    assert sess.running_statistics() == list(STATS)
    assert not set(STATS) & set(sess.parameters())
    for feeds in batches():
        before = sess.state()
        # The reference's BatchNormalization, from the same parameters and statistics, gives
        # the statistics the step must end with.
        rm, rv = ReferenceEvaluator(with_values(model(reference=True), before)).run(["rm", "rv"], feeds)
        if split:
            sess.forward_backward(feeds)
            sess.optimizer_step()
            sess.lazy_reset_grad()
        else:
            sess.train_step(feeds)
        after = sess.state()
        np.testing.assert_allclose(after["bn.running_mean"], rm, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(after["bn.running_var"], rv, rtol=1e-5, atol=1e-6)
    assert not np.allclose(after["bn.running_var"], 1.0)  # they moved


def test_eval_and_export_normalize_with_the_running_statistics(tmp_path):
    sess = TrainingSession(model(), loss="loss", optimizer="adamw", lr=0.01)
    data = batches()
    for feeds in data:
        sess.train_step(feeds)
    state = sess.state()
    # Inference: BatchNormalization with training_mode 0 over the trained state.
    want = ReferenceEvaluator(with_values(model(training_mode=0), state)).run(["logits"], data[0])[0]
    got = sess.eval_step(data[0])[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    path = tmp_path / "inference.onnx"
    sess.export_model_for_inferencing(str(path), ["logits"])
    exported = onnx.load(path)
    bn = next(n for n in exported.graph.node if n.op_type == "BatchNormalization")
    assert helper.get_attribute_value(next(a for a in bn.attribute if a.name == "training_mode")) == 0
    assert len(bn.output) == 1
    runtime = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(runtime.run(None, {"x": data[0]["x"]})[0], want, rtol=1e-5, atol=1e-5)


def test_checkpoint_carries_the_statistics(tmp_path):
    sess = TrainingSession(model(), loss="loss", optimizer="sgd", lr=0.1)
    data = batches()
    for feeds in data[:3]:
        sess.train_step(feeds)
    sess.save_checkpoint(str(tmp_path / "ckpt"))
    resumed = TrainingSession(model(), loss="loss", optimizer="sgd", lr=0.1)
    resumed.load_checkpoint(str(tmp_path / "ckpt"))
    for feeds in data[3:]:
        sess.train_step(feeds)
        resumed.train_step(feeds)
    for name in STATS:
        np.testing.assert_array_equal(resumed.state()[name], sess.state()[name])


def test_a_statistic_is_not_a_parameter():
    with pytest.raises(Exception, match="'bn.running_var' is a running statistic"):
        TrainingSession(model(), loss="loss", params=["conv.weight", "bn.running_var"])


def test_artifacts_do_not_train_the_statistics(tmp_path):
    from graft.training import LossType, OptimType, generate_artifacts
    generate_artifacts(forward_only(model()), loss=LossType.CrossEntropyLoss, optimizer=OptimType.AdamW, artifact_directory=tmp_path)
    grads = [o.name for o in onnx.load(tmp_path / "training_model.onnx").graph.output if o.name.endswith("_grad")]
    assert grads == ["conv.weight_grad", "bn.weight_grad", "bn.bias_grad", "fc.weight_grad", "fc.bias_grad"]


def test_artifacts_module_updates_the_statistics(tmp_path):
    """onnxruntime-style Module over generate_artifacts: each training call moves the running
    statistics as the ONNX reference does; eval and the exported model normalize with them."""
    from graft.training import LossType, OptimType, generate_artifacts
    from graft.training.api import CheckpointState, Module, Optimizer

    generate_artifacts(forward_only(model()), loss=LossType.CrossEntropyLoss, optimizer=OptimType.SGD,
                       artifact_directory=tmp_path)
    training = onnx.load(tmp_path / "training_model.onnx")
    assert [o.name for o in training.graph.output if o.name.endswith(".new")] == [s + ".new" for s in STATS]
    state = CheckpointState.load_checkpoint(tmp_path / "checkpoint")
    assert set(STATS) <= set(state.tensors)
    module = Module(tmp_path / "training_model.onnx", state, tmp_path / "eval_model.onnx")
    optimizer = Optimizer(tmp_path / "optimizer_model.onnx", module)
    optimizer.set_learning_rate(0.1)
    data = batches()
    for feeds in data:
        before = dict(state.tensors)
        rm, rv = ReferenceEvaluator(with_values(model(reference=True), before)).run(["rm", "rv"], feeds)
        module(feeds["x"], feeds["labels"])
        np.testing.assert_allclose(state.tensors["bn.running_mean"], rm, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state.tensors["bn.running_var"], rv, rtol=1e-5, atol=1e-6)
        optimizer.step()
        module.lazy_reset_grad()
    assert not np.allclose(state.tensors["bn.running_var"], 1.0)  # they moved
    # Eval: the reference's inference-mode BatchNormalization over the trained state.
    want_logits, want_loss = ReferenceEvaluator(with_values(model(training_mode=0), state.tensors)).run(
        ["logits", "loss"], data[0])
    module.eval()
    np.testing.assert_allclose(module(data[0]["x"], data[0]["labels"]), want_loss, rtol=1e-5, atol=1e-6)
    path = tmp_path / "inference.onnx"
    module.export_model_for_inferencing(path, ["logits"])
    runtime = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(runtime.run(None, {"x": data[0]["x"]})[0], want_logits, rtol=1e-5, atol=1e-5)


def test_cpp_module_updates_the_statistics_as_python(tmp_path):
    """examples/cpp/finetune.cc (the C++ Module) on the same artifacts and batches ends with the
    parameters and running statistics of the Python Module, which the test above checks against
    the ONNX reference."""
    import os
    import subprocess

    from graft.checkpoint import load_checkpoint
    from graft.training import LossType, OptimType, generate_artifacts, write_dataset
    from graft.training.api import CheckpointState, Module, Optimizer

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    binary = os.environ.get("GRAFT_FINETUNE", os.path.join(root, "build", "examples", "graft_finetune"))
    generate_artifacts(forward_only(model()), loss=LossType.CrossEntropyLoss, optimizer=OptimType.SGD,
                       artifact_directory=tmp_path / "artifacts")
    data = batches()
    write_dataset(tmp_path / "train.bin", {"x": np.concatenate([b["x"] for b in data]),
                                           "labels": np.concatenate([b["labels"] for b in data])})
    proc = subprocess.run([binary, str(tmp_path / "artifacts"), str(tmp_path / "train.bin"), str(tmp_path / "out"),
                           "--epochs", "1", "--batch", "8", "--lr", "0.1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    tensors, _, _ = load_checkpoint(tmp_path / "out" / "checkpoint")

    state = CheckpointState.load_checkpoint(tmp_path / "artifacts" / "checkpoint")
    module = Module(tmp_path / "artifacts" / "training_model.onnx", state, tmp_path / "artifacts" / "eval_model.onnx")
    optimizer = Optimizer(tmp_path / "artifacts" / "optimizer_model.onnx", module)
    optimizer.set_learning_rate(0.1)
    for feeds in data:
        module(feeds["x"], feeds["labels"])
        optimizer.step()
        module.lazy_reset_grad()
    assert set(STATS) <= set(tensors)
    assert not np.allclose(tensors["bn.running_var"], 1.0)
    for name, ours in state.tensors.items():
        np.testing.assert_allclose(tensors[name], ours, rtol=1e-5, atol=1e-6, err_msg=name)
