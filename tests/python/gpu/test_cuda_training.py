"""Training on the GPU: the digits CNN of the demo (examples/train_digits.py) trained with the CUDA
provider reaches the accuracy of its CPU training, float16 mixed precision trains on the device,
and graft.torch.Module trains a CUDA module as PyTorch trains a copy of it."""

import copy
import warnings
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import graft
import graft.torch
from graft.training import TrainingSession
from train_digits import BATCH, DigitsCNN, WithLoss, export, save_inference_model

warnings.filterwarnings("ignore", message=".*training mode.*")

EPOCHS = 20
# TF32 off, so the device's steps follow the host's as closely as its summation order allows.
CUDA = [("CUDAExecutionProvider", {"use_tf32": 0}), "CPUExecutionProvider"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The demo's data, split, batch order and initial weights, and its models exported once."""
    folder = tmp_path_factory.mktemp("digits")
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    order = np.random.default_rng(0)
    batches = []
    for _ in range(EPOCHS):
        perm = order.permutation(len(x_train))
        batches += [perm[i:i + BATCH] for i in range(0, len(perm) - BATCH + 1, BATCH)]
    torch.manual_seed(0)
    net = DigitsCNN()
    train_model = export(WithLoss(net), (torch.tensor(x_train[:BATCH]), torch.tensor(y_train[:BATCH])),
                         str(folder / "train.onnx"), ["x", "labels"], ["loss"])
    infer_path = save_inference_model(net, {}, x_test[:4], str(folder))
    return SimpleNamespace(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, batches=batches,
                           train_model=train_model, infer_path=infer_path, folder=folder)


def _train(d, providers, **options) -> tuple[float, list[float], TrainingSession]:
    """Trains the demo's SGD-momentum run; returns the test accuracy (inference on `providers`
    too), the losses and the session."""
    sess = TrainingSession(d.train_model, loss="loss", optimizer="sgd", lr=0.02, momentum=0.9, providers=providers,
                           **options)
    losses = [sess.train_step({"x": d.x_train[idx], "labels": d.y_train[idx]}) for idx in d.batches]
    trained = sess.state()
    infer = onnx.load(d.infer_path)
    for init in infer.graph.initializer:  # as save_inference_model does
        key = init.name if init.name in trained else "net." + init.name
        if key in trained:
            init.CopyFrom(onnx.numpy_helper.from_array(trained[key], init.name))
    logits = graft.InferenceSession(infer.SerializeToString(), providers=providers).run(None, {"x": d.x_test})[0]
    return float((logits.argmax(1) == d.y_test).mean()), losses, sess


def test_digits_on_the_gpu_reach_the_cpu_accuracy(digits):
    cpu_accuracy, cpu_losses, _ = _train(digits, ["CPUExecutionProvider"])
    gpu_accuracy, gpu_losses, sess = _train(digits, CUDA)
    print(f"digits test accuracy after {len(digits.batches)} steps: cpu {cpu_accuracy:.4f}, gpu {gpu_accuracy:.4f}")
    # Same weights and batch: the first step's loss agrees before the runs drift apart.
    assert abs(gpu_losses[0] - cpu_losses[0]) <= 1e-4 * abs(cpu_losses[0])
    assert cpu_accuracy >= 0.95
    assert abs(gpu_accuracy - cpu_accuracy) <= 0.01
    assert sess.step == len(digits.batches)


def test_float16_mixed_precision_trains_on_the_gpu(digits):
    accuracy, losses, sess = _train(digits, CUDA, mixed_precision="float16")
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    print(f"float16 mixed precision: loss {first:.4f} -> {last:.4f}, accuracy {accuracy:.4f}, "
          f"loss scale {sess.loss_scale}, {sess.skipped_steps} skipped steps")
    assert np.isfinite(losses).all()
    assert last < 0.25 * first
    assert accuracy >= 0.93
    assert sess.skipped_steps < len(losses) // 10
    assert sess.loss_scale > 0


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8, momentum=0.2)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


class CNNWithLoss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cnn = CNN()

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.cnn(x), labels)


@pytest.mark.parametrize("loss_inside", [True, False], ids=["scalar", "vector-jacobian"])
def test_torch_module_trains_on_cuda_like_pytorch(loss_inside, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # torch's convolutions as exact as graft's
    torch.manual_seed(1)
    model = (CNNWithLoss() if loss_inside else CNN()).cuda()
    ref = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(6, 2, 8, 8, generator=g).cuda(), torch.randint(0, 5, (6,), generator=g).cuda())
            for _ in range(5)]
    wrapper = graft.torch.Module(model, data[0] if loss_inside else data[0][:1])
    opt = torch.optim.AdamW(wrapper.parameters(), lr=0.01)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=0.01)
    for x, labels in data:
        losses = []
        for m, o in ((wrapper, opt), (ref, ref_opt)):
            o.zero_grad()
            loss = m(x, labels) if loss_inside else nn.functional.cross_entropy(m(x), labels)
            loss.backward()
            o.step()
            losses.append(loss.detach())
        assert losses[0].device == x.device
        torch.testing.assert_close(losses[0], losses[1], rtol=1e-4, atol=1e-5)
    assert all(p.grad.device == x.device for p in wrapper.parameters())
    theirs = ref.state_dict()
    for name, value in model.state_dict().items():
        assert value.device == x.device, name
        torch.testing.assert_close(value.float(), theirs[name].float(), rtol=1e-3, atol=1e-4, msg=name)
