"""graft.training.api with onnxruntime's interface: Module, CheckpointState (parameters and typed
properties), Optimizer and LinearLRScheduler, checked against torch training the same network,
and nominal checkpoints, buffers and the errors onnxruntime documents."""

import numpy as np
import onnx
import pytest
import torch

from graft import OrtValue
from graft.training import artifacts
from graft.training.api import CheckpointState, LinearLRScheduler, Module, Optimizer

from .training_models import IN, OUT, batch, onnx_mlp, torch_mlp, torch_params

FROZEN, TRAINED = ["fc1.weight", "fc1.bias"], ["fc2.weight", "fc2.bias"]


@pytest.fixture
def trained_half(tmp_path):
    """Artifacts for an MLP whose first layer is frozen, trained with SGD; the torch twin."""
    net = torch_mlp(seed=11)
    artifacts.generate_artifacts(onnx_mlp(net), requires_grad=TRAINED, frozen_params=FROZEN,
                                 loss=artifacts.LossType.CrossEntropyLoss, optimizer=artifacts.OptimType.SGD,
                                 artifact_directory=tmp_path, nominal_checkpoint=True)
    return tmp_path, net


def _module(directory, checkpoint="checkpoint", eval_model=True):
    state = CheckpointState.load_checkpoint(directory / checkpoint)
    module = Module(directory / "training_model.onnx", state,
                    directory / "eval_model.onnx" if eval_model else None)
    return state, module, Optimizer(directory / "optimizer_model.onnx", module)


def test_training_matches_torch_with_frozen_parameters_fed_from_the_state(trained_half):
    directory, net = trained_half
    state, module, optimizer = _module(directory)
    optimizer.set_learning_rate(0.5)
    # A frozen parameter changed in the state is what the model computes with.
    new_bias = np.linspace(-1, 1, 5).astype(np.float32)
    state.parameters["fc1.bias"] = new_bias
    with torch.no_grad():
        torch_params(net)["fc1.bias"].copy_(torch.from_numpy(new_bias))
    opt = torch.optim.SGD([torch_params(net)[n] for n in TRAINED], lr=0.5)
    for step in range(3):
        x, labels, _ = batch(step)
        loss = module(x, labels)
        optimizer.step()
        module.lazy_reset_grad()
        opt.zero_grad()
        want = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(labels))
        want.backward()
        opt.step()
        np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-5)
    for name, p in torch_params(net).items():
        np.testing.assert_allclose(state.parameters[name].data, p.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(state.parameters["fc1.bias"].data, new_bias)
    module.eval()
    assert module.input_names() == ["input", "labels"] and module.output_names() == ["loss"]
    x, labels, _ = batch(9)
    want = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(labels))
    np.testing.assert_allclose(module(x, labels), want.detach().numpy(), rtol=1e-5)


def test_parameter_views_and_gradients(trained_half):
    directory, net = trained_half
    state = CheckpointState.load_checkpoint(directory / "checkpoint")
    assert len(state.parameters) == 4 and {n for n, _ in state.parameters} == set(FROZEN + TRAINED)
    assert state.parameters["fc2.bias"].grad is None  # no Module yet
    assert state.parameters["fc2.bias"].requires_grad and not state.parameters["fc1.bias"].requires_grad
    module = Module(directory / "training_model.onnx", state)
    for name in TRAINED:
        assert state.parameters[name].requires_grad is True
        assert not state.parameters[name].grad.any() and state.parameters[name].grad.shape == state.parameters[
            name].data.shape
    for name in FROZEN:
        assert state.parameters[name].requires_grad is False and state.parameters[name].grad is None
    x, labels, _ = batch(3)
    module(x, labels)
    torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(labels)).backward()
    for name in TRAINED:
        np.testing.assert_allclose(state.parameters[name].grad, torch_params(net)[name].grad.numpy(), rtol=1e-4,
                                   atol=1e-6)
    with pytest.raises(KeyError, match="fc9"):
        state.parameters["fc9.weight"]
    with pytest.raises(KeyError, match="fc9"):
        state.parameters["fc9.weight"] = np.ones(3, np.float32)
    before = state.parameters["fc2.bias"].data
    with pytest.raises(Exception, match="fc2.bias"):
        state.parameters["fc2.bias"] = np.ones(7, np.float32)
    np.testing.assert_array_equal(state.parameters["fc2.bias"].data, before)
    with pytest.raises(ValueError, match="fc2.weight"):  # refused whole: fc2.bias keeps its value
        state.tensors = {"fc2.bias": np.zeros(OUT, np.float32), "fc2.weight": np.zeros((OUT, 6), np.float32)}
    np.testing.assert_array_equal(state.parameters["fc2.bias"].data, before)


@pytest.mark.parametrize("value", [-1, 0, 1234567890, 2**40, -0.1, 0.1, 1e-30, 3.4e38, "hello", "", "ünï"])
def test_typed_properties_survive_save_and_load(trained_half, value):
    directory, _ = trained_half
    state = CheckpointState.load_checkpoint(directory / "checkpoint")
    assert len(state.properties) == 0 and list(state.properties) == []
    Module(directory / "training_model.onnx", state)
    state.properties["p"] = value
    want = float(np.float32(value)) if isinstance(value, float) else value
    CheckpointState.save_checkpoint(state, directory / "saved")
    loaded = CheckpointState.load_checkpoint(directory / "saved")
    got = loaded.properties["p"]
    assert type(got) is type(want) and got == want
    if isinstance(want, float):
        assert np.float32(got).tobytes() == np.float32(value).tobytes()
    assert len(loaded.properties) == 1 and dict(loaded.properties.items()) == {"p": want}


def test_property_errors(trained_half):
    directory, _ = trained_half
    state = CheckpointState.load_checkpoint(directory / "checkpoint")
    with pytest.raises(ValueError, match="graft.frozen"):
        state.properties["graft.frozen"] = "x"
    with pytest.raises(TypeError, match="p"):
        state.properties["p"] = [1, 2]
    with pytest.raises(KeyError, match="missing"):
        state.properties["missing"]
    assert "graft.frozen" not in state.properties


def test_contiguous_parameters_round_trip(trained_half):
    directory, _ = trained_half
    state, module, optimizer = _module(directory)
    for trainable_only in (True, False):
        names = TRAINED + ([] if trainable_only else FROZEN)
        buffer = module.get_contiguous_parameters(trainable_only=trainable_only)
        assert isinstance(buffer, OrtValue) and buffer.device_name() == "Cpu"
        want = np.concatenate([state.parameters[n].data.reshape(-1) for n in names])
        assert buffer.numpy().dtype == np.float32 and buffer.numpy().tobytes() == want.tobytes()
        assert module.get_parameters_size(trainable_only) == want.size
    old = module.get_contiguous_parameters(trainable_only=False)
    x, labels, _ = batch(2)
    module(x, labels)
    optimizer.step()
    assert not np.array_equal(module.get_contiguous_parameters(False).numpy(), old.numpy())
    module.copy_buffer_to_parameters(old, trainable_only=False)
    assert module.get_contiguous_parameters(False).numpy().tobytes() == old.numpy().tobytes()
    current = module.get_contiguous_parameters(False).numpy().copy()
    with pytest.raises(ValueError, match="float32"):
        module.copy_buffer_to_parameters(np.zeros(current.size + 1, np.float32), trainable_only=False)
    assert module.get_contiguous_parameters(False).numpy().tobytes() == current.tobytes()


def test_ortvalues_in_ortvalues_out(trained_half):
    directory, net = trained_half
    _, module, _ = _module(directory)
    x, labels, _ = batch(5)
    loss = module(OrtValue.ortvalue_from_numpy(x), OrtValue.ortvalue_from_numpy(labels))
    assert isinstance(loss, OrtValue)
    want = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(labels))
    np.testing.assert_allclose(loss.numpy(), want.detach().numpy(), rtol=1e-5)
    assert isinstance(module(x, OrtValue.ortvalue_from_numpy(labels)), np.ndarray)
    with pytest.raises(ValueError, match="input, labels"):
        module(x)


def test_nominal_checkpoint(trained_half):
    directory, _ = trained_half
    complete, module, optimizer = _module(directory)
    nominal, nominal_module, nominal_optimizer = _module(directory, "nominal_checkpoint")
    assert "fc1.weight" in nominal.parameters and len(nominal.parameters) == 4
    with pytest.raises(RuntimeError, match="Please load the parameter states first"):
        nominal.parameters["fc1.weight"]
    with pytest.raises(RuntimeError, match="Please load all the parameter states first"):
        nominal.parameters["fc1.weight"] = np.ones((5, IN), np.float32)
    x, labels, _ = batch(6)
    for call in (nominal_module.get_contiguous_parameters, lambda: nominal_module(x, labels), nominal_optimizer.step,
                 lambda: nominal_module.eval()(x, labels),
                 lambda: CheckpointState.save_checkpoint(nominal, directory / "n")):
        with pytest.raises(RuntimeError, match="Please load"):
            call()
    nominal_module.train()
    assert nominal_module.get_parameters_size() == OUT * 5 + OUT
    nominal_module.copy_buffer_to_parameters(module.get_contiguous_parameters(), trainable_only=False)
    np.testing.assert_array_equal(module(x, labels), nominal_module(x, labels))
    optimizer.step()
    nominal_optimizer.step()
    assert module.get_contiguous_parameters().numpy().tobytes() == \
        nominal_module.get_contiguous_parameters().numpy().tobytes()


def test_linear_lr_scheduler_follows_onnxruntime(trained_half):
    directory, _ = trained_half
    _, module, optimizer = _module(directory)
    assert optimizer.get_learning_rate() == pytest.approx(1e-3)
    scheduler = LinearLRScheduler(optimizer, warmup_step_count=2, total_step_count=6, initial_lr=0.2)
    # onnxruntime: the rate at step s is initial_lr * (s / warmup) during warmup, then
    # initial_lr * (total - s) / (total - warmup); construction sets step 0's.
    rates = [optimizer.get_learning_rate()]
    x, labels, _ = batch(0)
    for _ in range(7):
        module(x, labels)
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.get_learning_rate())
    np.testing.assert_allclose(rates, [0.0, 0.1, 0.2, 0.15, 0.1, 0.05, 0.0, 0.0], rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="initial_lr"):
        LinearLRScheduler(optimizer, 0, 4, -0.1)


def test_refused_state_names_the_parameter(trained_half, tmp_path):
    directory, _ = trained_half
    state = CheckpointState({"fc2.weight": np.zeros((OUT, 5), np.float32), "fc1.weight": np.zeros((5, IN), np.float32),
                             "fc1.bias": np.zeros(5, np.float32)})
    with pytest.raises(Exception, match="fc2.bias"):
        Module(directory / "training_model.onnx", state)
    state = CheckpointState({"fc2.weight": np.zeros((OUT, 5), np.float32), "fc2.bias": np.zeros(OUT, np.float32),
                             "fc1.weight": np.zeros((5, IN + 1), np.float32), "fc1.bias": np.zeros(5, np.float32)})
    with pytest.raises(Exception, match="fc1.weight"):
        Module(directory / "training_model.onnx", state)
    with pytest.raises(ValueError, match="cuda"):
        Module(directory / "training_model.onnx", CheckpointState.load_checkpoint(directory / "checkpoint"),
               device="cuda")
    (tmp_path / "broken").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="broken"):
        CheckpointState.load_checkpoint(tmp_path / "broken")


def test_export_model_for_inferencing_runs_in_onnxruntime(trained_half):
    import onnxruntime as ort

    directory, net = trained_half
    state, module, optimizer = _module(directory)
    x, labels, _ = batch(8)
    module(x, labels)
    optimizer.step()
    for name, p in torch_params(net).items():
        with torch.no_grad():
            p.copy_(torch.from_numpy(state.parameters[name].data))
    want = net(torch.from_numpy(x)).detach().numpy()
    for names in (["output"], []):
        path = directory / f"inference{len(names)}.onnx"
        module.export_model_for_inferencing(path, names)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["input"]
        np.testing.assert_allclose(session.run(None, {"input": x})[0], want, rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="nope"):
        module.export_model_for_inferencing(directory / "bad.onnx", ["nope"])


def test_session_options_reach_the_sessions(trained_half, tmp_path):
    import graft

    directory, _ = trained_half
    options = graft.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    state = CheckpointState.load_checkpoint(directory / "checkpoint")
    Module(directory / "training_model.onnx", state, session_options=options)
    saved = onnx.load(tmp_path / "optimized.onnx")  # the training model, as its session runs it
    assert "fc2.weight_grad" in [o.name for o in saved.graph.output]


def test_adamw_artifacts_train_like_torch_adamw_with_onnxruntime_defaults(tmp_path):
    net = torch_mlp(seed=21)
    artifacts.generate_artifacts(onnx_mlp(net), requires_grad=FROZEN + TRAINED, loss=artifacts.LossType.MSELoss,
                                 optimizer=artifacts.OptimType.AdamW, artifact_directory=tmp_path)
    state, module, optimizer = _module(tmp_path)
    optimizer.set_learning_rate(0.01)
    # onnxblock.optim.AdamW()'s defaults: betas (0.9, 0.999), eps 1e-6, no weight decay.
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, eps=1e-6, weight_decay=0.0)
    for step in range(4):
        x, _, t = batch(step)
        module(x, t)
        optimizer.step()
        module.lazy_reset_grad()
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(torch.from_numpy(x)), torch.from_numpy(t)).backward()
        opt.step()
    assert state.step == 4
    for name, p in torch_params(net).items():
        np.testing.assert_allclose(state.parameters[name].data, p.detach().numpy(), rtol=1e-5, atol=1e-6)
