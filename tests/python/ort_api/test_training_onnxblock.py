"""graft.training.onnxblock (onnxruntime.training.onnxblock's interface): loss blocks against
torch.nn's losses, TrainingBlock gradients against torch autograd, parameters and checkpoints."""

import numpy as np
import onnx
import pytest
import torch

import graft
from graft.checkpoint import load_checkpoint
from graft.training import onnxblock

from .training_models import batch, onnx_mlp, torch_mlp, torch_params


class LossOn(onnxblock.ForwardBlock):
    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def build(self, output_name):
        return self.loss(output_name)


class TrainingLossOn(onnxblock.TrainingBlock):
    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def build(self, output_name):
        return self.loss(output_name)


def _run(model, feeds):
    return graft.InferenceSession(model.SerializeToString()).run(None, feeds)


LOSSES = [
    (lambda: onnxblock.loss.MSELoss(), torch.nn.MSELoss(), "target"),
    (lambda: onnxblock.loss.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum"), "target"),
    (lambda: onnxblock.loss.L1Loss(), torch.nn.L1Loss(), "target"),
    (lambda: onnxblock.loss.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), "labels"),
    (lambda: onnxblock.loss.CrossEntropyLoss(weight=np.array([0.2, 1.0, 3.0], np.float32), ignore_index=1),
     torch.nn.CrossEntropyLoss(weight=torch.tensor([0.2, 1.0, 3.0]), ignore_index=1), "labels"),
    (lambda: onnxblock.loss.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), "target"),
    (lambda: onnxblock.loss.BCEWithLogitsLoss(pos_weight=np.array([0.5, 2.0, 4.0], np.float32)),
     torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([0.5, 2.0, 4.0])), "target"),
]


@pytest.mark.parametrize("make_block,reference,target", LOSSES)
def test_loss_blocks_compute_torch_losses(make_block, reference, target):
    net = torch_mlp()
    x, labels, t = batch()
    t = 1 / (1 + np.exp(-t)) if isinstance(reference, torch.nn.BCEWithLogitsLoss) else t
    block = LossOn(make_block())
    with onnxblock.base(onnx_mlp(net)) as accessor:
        loss_name = block("output")
    model = block.to_model_proto()
    assert accessor.model.graph.output[0].name == loss_name == model.graph.output[0].name
    assert [i.name for i in model.graph.input] == ["input", target]
    y = labels if target == "labels" else t.astype(np.float32)
    ours = _run(model, {"input": x, target: y})[0]
    want = reference(net(torch.from_numpy(x)), torch.from_numpy(y)).detach().numpy()
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make_block,reference,target", [LOSSES[0], LOSSES[3], LOSSES[5]])
def test_training_block_gradients_match_torch_autograd(make_block, reference, target):
    net = torch_mlp(seed=3)
    x, labels, t = batch(4)
    block = TrainingLossOn(make_block())
    for name in ("fc1.weight", "fc2.weight", "fc2.bias"):
        block.requires_grad(name)
    block.requires_grad("fc1.bias", False)
    with onnxblock.base(onnx_mlp(net)):
        block("output")
    training, eval_model = block.to_model_proto()
    trainable, frozen = block.parameters()
    assert [p.name for p in trainable] == ["fc1.weight", "fc2.weight", "fc2.bias"]
    assert [p.name for p in frozen] == ["fc1.bias"]
    assert [o.name for o in training.graph.output][1:] == ["fc1.weight_grad", "fc2.weight_grad", "fc2.bias_grad"]
    assert len(eval_model.graph.output) == 1
    assert {"fc1.weight", "fc1.bias"} <= {i.name for i in eval_model.graph.input}
    y = labels if target == "labels" else t
    params = {n: p.detach().numpy() for n, p in torch_params(net).items()}
    outs = _run(training, {"input": x, target: y, **params})
    loss = reference(net(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    np.testing.assert_allclose(outs[0], loss.detach().numpy(), rtol=1e-5, atol=1e-6)
    for name, got in zip(["fc1.weight", "fc2.weight", "fc2.bias"], outs[1:]):
        np.testing.assert_allclose(got, torch_params(net)[name].grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(_run(eval_model, {"input": x, target: y, **params})[0], outs[0], rtol=1e-6)


def test_parameters_before_build_raises():
    with pytest.raises(RuntimeError, match="Please build the training model first before trying to retrieve the "
                                           "parameters."):
        TrainingLossOn(onnxblock.loss.MSELoss()).parameters()


def test_unknown_requires_grad_name_is_named():
    block = TrainingLossOn(onnxblock.loss.MSELoss())
    block.requires_grad("fc9.weight")
    with pytest.raises(ValueError, match="fc9.weight"), onnxblock.base(onnx_mlp(torch_mlp())):
        block("output")


def test_block_subclass_without_init_and_composed_blocks():
    class WeightedSum(onnxblock.Block):
        def __init__(self):  # never calls Block.__init__
            self.mse, self.l1 = onnxblock.loss.MSELoss(), onnxblock.loss.L1Loss()
            self.w = onnxblock.blocks.Constant(0.25)
            self.add, self.mul = onnxblock.blocks.Add(), onnxblock.blocks.Mul()

        def build(self, name):
            return self.add(self.mse(name, target_name="t1"), self.mul(self.w(), self.l1(name, target_name="t2")))

    net = torch_mlp()
    block = LossOn(WeightedSum())
    with onnxblock.base(onnx_mlp(net)):
        block("output")
    x, _, t = batch()
    t2 = t[::-1].copy()
    got = _run(block.to_model_proto(), {"input": x, "t1": t, "t2": t2})[0]
    out = net(torch.from_numpy(x))
    want = torch.nn.functional.mse_loss(out, torch.from_numpy(t)) + 0.25 * torch.nn.functional.l1_loss(
        out, torch.from_numpy(t2))
    np.testing.assert_allclose(got.reshape(()), want.detach().numpy(), rtol=1e-5)


def test_blocks_outside_a_base_raise():
    with pytest.raises(RuntimeError, match="base"):
        onnxblock.blocks.Add()("a", "b")
    with onnxblock.empty_base(), pytest.raises(RuntimeError, match="already"), onnxblock.empty_base():
        pass


def test_linear_and_cast_blocks_on_an_empty_base():
    class Net(onnxblock.ForwardBlock):
        def __init__(self):
            super().__init__()
            self.cast = onnxblock.blocks.Cast(to=onnx.TensorProto.FLOAT)
            self.linear = onnxblock.blocks.Linear(4, 2, alpha=0.5, beta=2.0)

        def build(self, name):
            return self.linear(self.cast(name))

    net = Net()
    with onnxblock.empty_base(opset_version=17) as accessor:
        accessor.model.graph.input.append(onnx.helper.make_tensor_value_info("x", onnx.TensorProto.INT64, [1, 4]))
        out = net("x")
    model = net.to_model_proto()
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    w, b = (onnx.numpy_helper.to_array(t) for t in model.graph.initializer)
    x = np.array([[1, 2, 3, 4]], np.int64)
    np.testing.assert_allclose(_run(model, {"x": x})[0], 0.5 * x.astype(np.float32) @ w + 2.0 * b, rtol=1e-6)
    assert model.graph.output[0].name == out


def _trained_block(requires_grad=("fc1.weight", "fc2.bias")):
    block = TrainingLossOn(onnxblock.loss.MSELoss())
    for name in requires_grad:
        block.requires_grad(name)
    block.requires_grad("fc2.weight", False)
    model = onnx_mlp(torch_mlp(seed=7))
    with onnxblock.base(model):
        block("output")
    return block, model


def test_save_checkpoint_and_load_into_model_bit_exactly(tmp_path):
    block, model = _trained_block()
    onnxblock.save_checkpoint(block.parameters(), tmp_path / "ckpt")
    tensors, step, properties = load_checkpoint(tmp_path / "ckpt")
    originals = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    assert set(tensors) == {"fc1.weight", "fc2.bias", "fc2.weight"} and step == 0
    for name, value in tensors.items():
        assert value.tobytes() == originals[name].tobytes(), name
    zero = onnx_mlp(torch_mlp(seed=7))
    for t in zero.graph.initializer:
        t.CopyFrom(onnx.numpy_helper.from_array(np.zeros_like(onnx.numpy_helper.to_array(t)), t.name))
    onnxblock.load_checkpoint_to_model(tmp_path / "ckpt", zero)
    loaded = {t.name: onnx.numpy_helper.to_array(t) for t in zero.graph.initializer}
    for name in tensors:
        assert loaded[name].tobytes() == originals[name].tobytes(), name
    assert not loaded["fc1.bias"].any()  # not in the checkpoint: untouched


def test_nominal_checkpoint_is_small_and_refused_by_load_into_model(tmp_path):
    block, model = _trained_block()
    onnxblock.save_checkpoint(block.parameters(), tmp_path / "full")
    onnxblock.save_checkpoint(block.parameters(), tmp_path / "nominal", nominal_checkpoint=True)
    assert (tmp_path / "nominal").stat().st_size < (tmp_path / "full").stat().st_size
    with pytest.raises(ValueError, match="nominal"):
        onnxblock.load_checkpoint_to_model(tmp_path / "nominal", model)


def test_optimizer_blocks_build_graft_update_models():
    block, _ = _trained_block()
    with onnxblock.empty_base() as accessor:
        done = onnxblock.optim.AdamW(weight_decay=0.5, clip_grad=onnxblock.optim.ClipGradNorm(1.0))(block.parameters())
    model = accessor.model
    names = [i.name for i in model.graph.input]
    assert {"gradient/fc1.weight", "gradient/fc2.bias", "fc1.weight", "fc2.bias"} <= set(names)
    assert "fc2.weight" not in names  # frozen
    assert done == model.graph.output[-1].name
    with pytest.raises(NotImplementedError, match="bias_correction"):
        onnxblock.optim.AdamW(bias_correction=False)


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_block_matches_torch(max_norm):
    class Clip(onnxblock.ForwardBlock):
        def __init__(self):
            super().__init__()
            self.clip = onnxblock.optim.ClipGradNorm(max_norm)

        def build(self, name):
            return self.clip(name)

    block = Clip()
    with onnxblock.empty_base(opset_version=18) as accessor:
        accessor.model.graph.input.append(
            onnx.helper.make_tensor_sequence_value_info("gradients", onnx.TensorProto.FLOAT, None))
        out = block("gradients")
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal(shape).astype(np.float32) for shape in ((3, 4), (4,), (2, 2, 2))]
    got = _run(block.to_model_proto(), {"gradients": grads})[0]
    params = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    assert block.to_model_proto().graph.output[0].name == out and len(got) == 3
    for ours, p in zip(got, params):
        np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-6, atol=1e-7)
