"""TrainingSession: training steps match PyTorch, and resuming from a checkpoint reproduces an
uninterrupted run bit for bit."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import graft
from graft.training import TrainingSession


def _mlp(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {"fc1.weight": (rng.standard_normal((16, 6)) * 0.4).astype(np.float32),
              "fc1.bias": np.zeros(16, np.float32),
              "fc2.weight": (rng.standard_normal((3, 16)) * 0.4).astype(np.float32),
              "fc2.bias": np.zeros(3, np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["y"], transB=1),
             helper.make_node("Sub", ["y", "target"], ["err"]),
             helper.make_node("Mul", ["err", "err"], ["sq"]),
             helper.make_node("ReduceMean", ["sq"], ["loss"], keepdims=0)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6]),
                                             helper.make_tensor_value_info("target", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
                               helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])],
                              [numpy_helper.from_array(v, k) for k, v in params.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model, params


def _batches(n: int):
    rng = np.random.default_rng(42)
    for _ in range(n):
        x = rng.standard_normal((8, 6)).astype(np.float32)
        yield x, np.tanh(x[:, :3] * 2).astype(np.float32)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_matches_pytorch(optimizer):
    model, params = _mlp()
    sess = TrainingSession(model, loss="loss", optimizer=optimizer, lr=0.05, momentum=0.9 if optimizer == "sgd" else 0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        for (name, p), key in zip(net.named_parameters(), params):
            p.copy_(torch.tensor(params[key]))
    opt = (torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(net.parameters(), lr=0.05))
    losses = []
    for x, t in _batches(30):
        ours = sess.train_step({"x": x, "target": t})
        opt.zero_grad()
        loss = ((net(torch.tensor(x)) - torch.tensor(t)) ** 2).mean()
        loss.backward()
        opt.step()
        assert abs(ours - float(loss)) <= 1e-4 * abs(float(loss)), f"step {len(losses)}: {ours} vs {float(loss)}"
        losses.append(ours)
    assert sess.step == 30 and losses[-1] < losses[0] * 0.5
    state = sess.state()
    for (name, p), key in zip(net.named_parameters(), params):
        np.testing.assert_allclose(state[key], p.detach().numpy(), rtol=1e-4, atol=1e-5)
    y, loss = sess.eval_step({"x": x, "target": t})
    np.testing.assert_allclose(y, net(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_resume_from_checkpoint_is_bitwise_identical(tmp_path):
    model, _ = _mlp(1)
    batches = list(_batches(15))
    straight = TrainingSession(model, loss="loss", optimizer="adamw", lr=0.01)
    for x, t in batches:
        straight.train_step({"x": x, "target": t})

    first = TrainingSession(model, loss="loss", optimizer="adamw", lr=0.01)
    for x, t in batches[:10]:
        first.train_step({"x": x, "target": t})
    first.save_checkpoint(tmp_path / "ckpt.graft")
    resumed = TrainingSession(model, loss="loss", optimizer="adamw", lr=0.5)
    resumed.load_checkpoint(tmp_path / "ckpt.graft")
    assert resumed.step == 10 and resumed.learning_rate == pytest.approx(0.01)
    for x, t in batches[10:]:
        resumed.train_step({"x": x, "target": t})
    a, b = straight.state(), resumed.state()
    assert set(a) == set(b) and len(a) == 12  # 4 parameters, 8 AdamW moments
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k


def _with_dropout(model: onnx.ModelProto) -> onnx.ModelProto:
    """The MLP with an unseeded training-mode Dropout after its hidden Relu."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for node in m.graph.node:
        if node.op_type == "Gemm" and node.input[0] == "r":
            node.input[0] = "dropped"
    m.graph.initializer.extend([numpy_helper.from_array(np.array(0.4, np.float32), "ratio"),
                                numpy_helper.from_array(np.array(True), "training")])
    relu = [i for i, n in enumerate(m.graph.node) if n.op_type == "Relu"][0]
    m.graph.node.insert(relu + 1, helper.make_node("Dropout", ["r", "ratio", "training"], ["dropped", "mask"]))
    return m


def test_resume_reproduces_dropout_masks(tmp_path):
    # The checkpoint carries the default generator, so the resumed run draws the masks the
    # uninterrupted one drew.
    model = _with_dropout(_mlp(2)[0])
    params = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    batches = list(_batches(12))
    graft.seed(7)
    straight = TrainingSession(model, loss="loss", params=params, optimizer="sgd", lr=0.05)
    losses = [straight.train_step({"x": x, "target": t}) for x, t in batches]
    graft.seed(7)
    first = TrainingSession(model, loss="loss", params=params, optimizer="sgd", lr=0.05)
    for x, t in batches[:6]:
        first.train_step({"x": x, "target": t})
    first.save_checkpoint(tmp_path / "ckpt.graft")
    graft.seed(12345)  # a new process would start from another state
    resumed = TrainingSession(model, loss="loss", params=params, optimizer="sgd", lr=0.05)
    resumed.load_checkpoint(tmp_path / "ckpt.graft")
    resumed_losses = [resumed.train_step({"x": x, "target": t}) for x, t in batches[6:]]
    assert resumed_losses == losses[6:]
    a, b = straight.state(), resumed.state()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
    # Without the generator's state the masks differ (the test can tell).
    graft.seed(12345)
    again = TrainingSession(model, loss="loss", params=params, optimizer="sgd", lr=0.05)
    again.load_checkpoint(tmp_path / "ckpt.graft")
    graft.seed(12345)
    assert [again.train_step({"x": x, "target": t}) for x, t in batches[6:]] != losses[6:]


def test_checkpoint_of_another_model_is_refused(tmp_path):
    model, _ = _mlp()
    sess = TrainingSession(model, loss="loss", optimizer="sgd", lr=0.1)
    other = TrainingSession(model, loss="loss", optimizer="adam", lr=0.1)
    other.save_checkpoint(tmp_path / "adam.graft")
    sess.save_checkpoint(tmp_path / "sgd.graft")
    other_state = other.state()
    with pytest.raises(graft.InvalidArgument, match="has no tensor"):
        other.load_checkpoint(tmp_path / "sgd.graft")  # no Adam moments in an SGD checkpoint
    for k, v in other.state().items():  # a refused load changes nothing
        assert v.tobytes() == other_state[k].tobytes()


def test_export_model_for_inferencing(tmp_path):
    import onnxruntime as ort

    model, _ = _mlp(2)
    sess = TrainingSession(model, loss="loss", optimizer="adam", lr=0.05)
    for x, t in _batches(10):
        sess.train_step({"x": x, "target": t})
    path = tmp_path / "infer.onnx"
    sess.export_model_for_inferencing(path, ["y"])
    exported = onnx.load(path)
    onnx.checker.check_model(exported, full_check=True)
    assert [i.name for i in exported.graph.input] == ["x"]  # the target and the loss are gone
    assert [o.name for o in exported.graph.output] == ["y"]
    y_train, _ = sess.eval_step({"x": x, "target": t})
    y_graft = graft.InferenceSession(str(path)).run(None, {"x": x})[0]
    y_ort = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    # The exported model runs the inference kernels (packed weights), the eval step the training
    # ones: the same products, summed in another order.
    np.testing.assert_allclose(y_graft, y_train, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y_ort, y_graft, rtol=1e-5, atol=1e-6)
    with pytest.raises(graft.InvalidArgument, match="no output 'nope'"):
        sess.export_model_for_inferencing(tmp_path / "bad.onnx", ["nope"])


def test_gradient_accumulation_matches_pytorch():
    model, params = _mlp(3)
    sess = TrainingSession(model, loss="loss", optimizer="sgd", lr=0.05, momentum=0.9)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        for (name, p), key in zip(net.named_parameters(), params):
            p.copy_(torch.tensor(params[key]))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    batches = list(_batches(12))
    for step in range(4):  # 3 micro-batches per update
        sess.lazy_reset_grad()
        opt.zero_grad()
        for x, t in batches[3 * step: 3 * step + 3]:
            ours = sess.forward_backward({"x": x, "target": t})
            loss = ((net(torch.tensor(x)) - torch.tensor(t)) ** 2).mean()
            loss.backward()
            assert abs(ours - float(loss)) <= 1e-5 * abs(float(loss))
        sess.optimizer_step()
        opt.step()
    assert sess.step == 4
    state = sess.state()
    for (name, p), key in zip(net.named_parameters(), params):
        np.testing.assert_allclose(state[key], p.detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(graft.InvalidArgument, match="no gradients yet"):
        TrainingSession(model, loss="loss", optimizer="sgd", lr=0.1).optimizer_step()


def _torch_mlp(params):
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        for (name, p), key in zip(net.named_parameters(), params):
            p.copy_(torch.tensor(params[key]))
    return net


def test_gradient_clipping_matches_clip_grad_norm():
    model, params = _mlp(4)
    sess = TrainingSession(model, loss="loss", optimizer="sgd", lr=0.1, momentum=0.9, max_grad_norm=0.05)
    unclipped = TrainingSession(model, loss="loss", optimizer="sgd", lr=0.1, momentum=0.9)
    net = _torch_mlp(params)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    norms = []
    for x, t in _batches(6):
        ours = sess.train_step({"x": x, "target": t})
        unclipped.train_step({"x": x, "target": t})
        opt.zero_grad()
        loss = ((net(torch.tensor(x)) - torch.tensor(t)) ** 2).mean()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(net.parameters(), 0.05)))
        opt.step()
        assert abs(ours - float(loss)) <= 1e-5 * abs(float(loss))
    assert min(norms) > 0.05  # every step was clipped
    state, plain = sess.state(), unclipped.state()
    for (name, p), key in zip(net.named_parameters(), params):
        np.testing.assert_allclose(state[key], p.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert max(np.abs(state[k] - plain[k]).max() for k in params) > 1e-3  # clipping changed the run
    with pytest.raises(graft.InvalidArgument, match="max_grad_norm"):
        TrainingSession(model, loss="loss", optimizer="sgd", max_grad_norm=-1.0)


@pytest.mark.parametrize("optimizer, ours_kwargs, torch_opt", [
    ("adagrad", dict(lr_decay=0.1), lambda p: torch.optim.Adagrad(p, lr=0.05, lr_decay=0.1)),
    ("rmsprop", dict(alpha=0.9, centered=True, momentum=0.5),
     lambda p: torch.optim.RMSprop(p, lr=0.05, alpha=0.9, centered=True, momentum=0.5)),
    ("rmsprop", dict(alpha=0.8), lambda p: torch.optim.RMSprop(p, lr=0.05, alpha=0.8)),
])
def test_optimizer_hyper_parameters_match_torch(optimizer, ours_kwargs, torch_opt):
    model, params = _mlp(5)
    sess = TrainingSession(model, loss="loss", optimizer=optimizer, lr=0.05, **ours_kwargs)
    net = _torch_mlp(params)
    opt = torch_opt(net.parameters())
    for x, t in _batches(10):
        sess.train_step({"x": x, "target": t})
        opt.zero_grad()
        ((net(torch.tensor(x)) - torch.tensor(t)) ** 2).mean().backward()
        opt.step()
    state = sess.state()
    for (name, p), key in zip(net.named_parameters(), params):
        np.testing.assert_allclose(state[key], p.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_intra_op_num_threads():
    model, _ = _mlp(6)
    one = TrainingSession(model, loss="loss", optimizer="adam", lr=0.01, intra_op_num_threads=1)
    default = TrainingSession(model, loss="loss", optimizer="adam", lr=0.01)
    for x, t in _batches(5):
        a = one.train_step({"x": x, "target": t})
        b = default.train_step({"x": x, "target": t})
        assert abs(a - b) <= 1e-6 * abs(b)
    with pytest.raises(graft.InvalidArgument, match="intra_op_num_threads"):
        TrainingSession(model, loss="loss", intra_op_num_threads=-2)


def test_providers_as_inference_session():
    # An unavailable provider is left out with onnxruntime's warning; the state then trains
    # exactly as with the default providers.
    model, _ = _mlp(6)
    default = TrainingSession(model, loss="loss", optimizer="sgd", lr=0.05, momentum=0.9)
    with pytest.warns(UserWarning, match="'CUDAExecutionProvider' is not in available provider names"):
        asked = TrainingSession(model, loss="loss", optimizer="sgd", lr=0.05, momentum=0.9,
                                providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    for x, t in _batches(3):
        assert asked.train_step({"x": x, "target": t}) == default.train_step({"x": x, "target": t})
    for name, value in default.state().items():
        np.testing.assert_array_equal(asked.state()[name], value)


def test_graph_rewrites_leave_the_exported_forward_alone(tmp_path):
    """The training step's optimizer composes Transpose chains; the forward model that
    export_model_for_inferencing writes must keep its own nodes as they were."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Transpose", ["x"], ["t1"], perm=[2, 0, 1]),
             helper.make_node("Transpose", ["t1"], ["t2"], perm=[1, 0, 2]),
             helper.make_node("MatMul", ["t2", "w"], ["y"]),
             helper.make_node("ReduceSumSquare", ["y"], ["loss"], keepdims=0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])],
                              [numpy_helper.from_array(rng.standard_normal((3, 5)).astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    sess = TrainingSession(model, loss="loss", optimizer="sgd", lr=0.01)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    sess.train_step({"x": x})
    sess.export_model_for_inferencing(str(tmp_path / "y.onnx"), ["y"])
    got = ort.InferenceSession(str(tmp_path / "y.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    want = np.transpose(np.transpose(x, (2, 0, 1)), (1, 0, 2)) @ sess.state()["w"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
