"""onnxruntime's on-device training flow with graft: generate_artifacts, then CheckpointState,
Module and Optimizer train like PyTorch; the exported inference model runs in onnxruntime."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import graft
from graft.training import api, artifacts, generate_artifacts
from graft.training.api import CheckpointState, LinearLRScheduler, Module, Optimizer


def test_artifacts_train_like_pytorch(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 4))
    x0 = torch.randn(8, 10)
    torch.onnx.export(net, (x0,), str(tmp_path / "net.onnx"), input_names=["input"], output_names=["logits"],
                      dynamo=True, external_data=False, optimize=False, verbose=False)
    model = onnx.load(tmp_path / "net.onnx")
    model.ir_version = min(model.ir_version, 10)
    out = tmp_path / "artifacts"
    artifacts.generate_artifacts(model, loss=artifacts.LossType.CrossEntropyLoss, optimizer=artifacts.OptimType.SGD,
                                 artifact_directory=out, momentum=0.9)
    for name in ("training_model.onnx", "eval_model.onnx", "optimizer_model.onnx"):
        onnx.checker.check_model(str(out / name))

    state = CheckpointState.load_checkpoint(out / "checkpoint")
    module = Module(out / "training_model.onnx", state, out / "eval_model.onnx")
    optimizer = Optimizer(out / "optimizer_model.onnx", module)
    optimizer.set_learning_rate(0.1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(1)
    for step in range(20):
        x = rng.standard_normal((8, 10)).astype(np.float32)
        labels = rng.integers(0, 4, 8).astype(np.int64)
        module.train()
        ours = float(module(x, labels))
        optimizer.step()
        module.lazy_reset_grad()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(torch.tensor(x)), torch.tensor(labels))
        loss.backward()
        opt.step()
        assert abs(ours - float(loss)) <= 1e-4 * abs(float(loss)), f"step {step}: {ours} vs {float(loss)}"
    assert state.step == 20
    module.eval()
    assert abs(float(module(x, labels)) - float(nn.functional.cross_entropy(net(torch.tensor(x)), torch.tensor(labels)))) < 1e-4

    # As in onnxruntime, the step is optimizer state: saved with it, not without.
    CheckpointState.save_checkpoint(state, tmp_path / "trained.ckpt", include_optimizer_state=True)
    assert CheckpointState.load_checkpoint(tmp_path / "trained.ckpt").step == 20
    CheckpointState.save_checkpoint(state, tmp_path / "weights.ckpt")
    assert CheckpointState.load_checkpoint(tmp_path / "weights.ckpt").step == 0
    module.export_model_for_inferencing(tmp_path / "inference.onnx", ["logits"])
    inference = onnx.load(tmp_path / "inference.onnx")
    onnx.checker.check_model(inference)
    assert [i.name for i in inference.graph.input] == ["input"]
    ours = graft.InferenceSession(str(tmp_path / "inference.onnx")).run(None, {"input": x})[0]
    theirs = ort.InferenceSession(str(tmp_path / "inference.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    np.testing.assert_allclose(ours, net(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)


def _sgd_artifacts(tmp_path, net):
    torch.onnx.export(net, (torch.randn(8, 10),), str(tmp_path / "net.onnx"), input_names=["input"],
                      output_names=["logits"], dynamo=True, external_data=False, optimize=False, verbose=False)
    model = onnx.load(tmp_path / "net.onnx")
    out = tmp_path / "artifacts"
    generate_artifacts(model, loss=artifacts.LossType.MSELoss, optimizer=artifacts.OptimType.SGD,
                       artifact_directory=out)
    state = CheckpointState.load_checkpoint(out / "checkpoint")
    module = Module(out / "training_model.onnx", state, out / "eval_model.onnx")
    return state, module, Optimizer(out / "optimizer_model.onnx", module)


def _train_with_schedule(state, module, optimizer, scheduler, net, torch_scheduler, steps):
    opt = torch_scheduler.optimizer
    rng = np.random.default_rng(2)
    lrs = []
    for _ in range(steps):
        x = rng.standard_normal((8, 10)).astype(np.float32)
        t = rng.standard_normal((8, 4)).astype(np.float32)
        lrs.append(optimizer.get_learning_rate())
        # The optimizer model takes the rate as a float32 scalar, so that is what it holds.
        assert optimizer.get_learning_rate() == pytest.approx(opt.param_groups[0]["lr"], rel=1e-7, abs=1e-12)
        module(x, t)
        optimizer.step()
        module.lazy_reset_grad()
        scheduler.step()
        opt.zero_grad()
        nn.functional.mse_loss(net(torch.tensor(x)), torch.tensor(t)).backward()
        opt.step()
        torch_scheduler.step()
    for name, p in net.named_parameters():
        np.testing.assert_allclose(state.tensors[name], p.detach().numpy(), rtol=1e-5, atol=1e-6)
    return lrs


def test_linear_lr_scheduler_follows_onnxruntime(tmp_path):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 4))
    state, module, optimizer = _sgd_artifacts(tmp_path, net)
    scheduler = LinearLRScheduler(optimizer, warmup_step_count=2, total_step_count=6, initial_lr=0.2)
    # onnxruntime's schedule: initial_lr * factor(optimizer step) from the start (0 at step 0 with
    # a warmup: onnxruntime's LinearLRScheduler sets the step-0 rate when it is created).
    opt = torch.optim.SGD(net.parameters(), lr=0.2)
    torch_scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / 2 if s < 2 else max(0.0, (6 - s) / 4))
    lrs = _train_with_schedule(state, module, optimizer, scheduler, net, torch_scheduler, 8)
    np.testing.assert_allclose(lrs, [0.0, 0.1, 0.2, 0.15, 0.1, 0.05, 0.0, 0.0], rtol=1e-7)
    with pytest.raises(ValueError, match="warmup_step_count"):
        LinearLRScheduler(optimizer, warmup_step_count=5, total_step_count=4, initial_lr=0.1)


def test_torch_schedules_drive_the_optimizer(tmp_path):
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 4))
    state, module, optimizer = _sgd_artifacts(tmp_path, net)
    optimizer.set_learning_rate(0.3)
    scheduler = api.CosineAnnealingLR(optimizer, T_max=5, eta_min=0.01)
    opt = torch.optim.SGD(net.parameters(), lr=0.3)
    torch_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5, eta_min=0.01)
    _train_with_schedule(state, module, optimizer, scheduler, net, torch_scheduler, 7)


def test_checkpoint_state_carries_the_random_generator(tmp_path):
    # Saving records graft's default generator; loading restores it, so draws after a resume
    # repeat those after the save. Without the restore they differ.
    graft.seed(3)
    state = CheckpointState({"w": np.ones(2, np.float32)}, step=4, properties={"epoch": "1"})
    CheckpointState.save_checkpoint(state, tmp_path / "ckpt", include_optimizer_state=True)
    after_save = graft.get_rng_state()
    graft.seed(99)
    loaded = CheckpointState.load_checkpoint(tmp_path / "ckpt")
    assert loaded.properties == {"epoch": "1"} and loaded.step == 4
    assert graft.get_rng_state() == after_save
    graft.seed(99)
    assert graft.get_rng_state() != after_save


@pytest.mark.parametrize("lr", [1e-7, 3.14159e-12, 1e-45, 5.877e-39])
def test_checkpoint_learning_rate_round_trips_bit_exactly(tmp_path, lr):
    """Every float a checkpoint stores reads back as the same bits: small rates, a subnormal
    (1e-45 is float32's smallest, 5.877e-39 another) included."""
    state, module, optimizer = _sgd_artifacts(tmp_path, nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 4)))
    optimizer.set_learning_rate(lr)
    CheckpointState.save_checkpoint(state, tmp_path / "lr.ckpt", include_optimizer_state=True)
    loaded = CheckpointState.load_checkpoint(tmp_path / "lr.ckpt")
    resumed = Optimizer(tmp_path / "artifacts" / "optimizer_model.onnx",
                        Module(tmp_path / "artifacts" / "training_model.onnx", loaded))
    assert np.float32(resumed.get_learning_rate()).tobytes() == np.float32(lr).tobytes()
    assert np.float32(lr) != 0


def test_damaged_learning_rate_is_refused_by_name(tmp_path):
    from graft.checkpoint import load_checkpoint, save_checkpoint

    state, module, optimizer = _sgd_artifacts(tmp_path, nn.Sequential(nn.Linear(10, 4)))
    CheckpointState.save_checkpoint(state, tmp_path / "ok.ckpt", include_optimizer_state=True)
    tensors, step, properties = load_checkpoint(tmp_path / "ok.ckpt")
    save_checkpoint(tmp_path / "bad.ckpt", tensors, step, {**properties, "graft.lr": "abc"})
    with pytest.raises(ValueError, match=r"bad\.ckpt.*'graft\.lr'.*'abc'"):
        CheckpointState.load_checkpoint(tmp_path / "bad.ckpt")


def test_state_snapshots_do_not_alias_the_state():
    state = CheckpointState({"w": np.ones(3, np.float32)})
    snapshot = state.tensors["w"]
    snapshot[:] = 5
    np.testing.assert_array_equal(state.tensors["w"], np.ones(3, np.float32))
    state.tensors = {"w": np.full(3, 2, np.float32)}
    np.testing.assert_array_equal(state.parameters["w"], np.full(3, 2, np.float32))
    with pytest.raises(ValueError, match="'w'"):
        state.tensors = {"w": np.ones(4, np.float32)}
