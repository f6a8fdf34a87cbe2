"""graft.torch.Module in a plain torch.optim loop: parameters, gradients and BatchNorm statistics
follow PyTorch's own training of an identical copy."""

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import graft
import graft.autodiff
import graft.torch

warnings.filterwarnings("ignore", message=".*training mode.*")


class MLPWithLoss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(self.net(x), target)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)  # BatchNorm cancels a bias: its gradient is noise
        self.bn = nn.BatchNorm2d(4, momentum=0.2)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


class CNNWithLoss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cnn = CNN()

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.cnn(x), labels)


class TwoHeads(nn.Module):
    """Several inputs (one of them integer labels) and outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(6, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor, scale: torch.Tensor, labels: torch.Tensor):
        h = torch.tanh(self.body(x)) * scale
        logits = self.head(h)
        return logits, nn.functional.cross_entropy(logits, labels), h


def _assert_state_close(ours: nn.Module, ref: nn.Module, rtol: float = 1e-5) -> None:
    theirs = ref.state_dict()
    for name, value in ours.state_dict().items():
        a, b = value.detach().numpy().astype(np.float64), theirs[name].detach().numpy().astype(np.float64)
        scale = max(np.abs(b).max(), 1e-3)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=name)


def _batches(n: int, shape: tuple, classes: int = 0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(*shape, generator=g)
        if classes:
            target = torch.randint(0, classes, (shape[0],), generator=g)
        else:
            target = torch.randn(shape[0], 3, generator=g)
        yield x, target


def test_mlp_with_loss_trains_like_pytorch():
    torch.manual_seed(0)
    model = MLPWithLoss()
    ref = copy.deepcopy(model)
    data = list(_batches(10, (8, 6)))
    wrapper = graft.torch.Module(model, data[0])
    opt = torch.optim.SGD(wrapper.parameters(), lr=0.1, momentum=0.9)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for x, t in data:
        opt.zero_grad()
        loss = wrapper(x, t)
        loss.backward()
        opt.step()
        ref_opt.zero_grad()
        ref_loss = ref(x, t)
        ref_loss.backward()
        ref_opt.step()
        assert abs(float(loss) - float(ref_loss)) <= 1e-5 * abs(float(ref_loss))
    _assert_state_close(model, ref)


@pytest.mark.parametrize("loss_inside", [True, False])
def test_cnn_with_batchnorm_trains_like_pytorch(loss_inside):
    torch.manual_seed(1)
    model = CNNWithLoss() if loss_inside else CNN()
    ref = copy.deepcopy(model)
    data = list(_batches(10, (6, 2, 8, 8), classes=5, seed=1))
    wrapper = graft.torch.Module(model, data[0] if loss_inside else data[0][:1])
    opt = torch.optim.AdamW(wrapper.parameters(), lr=0.01)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=0.01)
    for x, labels in data:
        for m, o in ((wrapper, opt), (ref, ref_opt)):
            o.zero_grad()
            loss = m(x, labels) if loss_inside else nn.functional.cross_entropy(m(x), labels)
            loss.backward()
            o.step()
    bn = model.cnn.bn if loss_inside else model.bn
    ref_bn = ref.cnn.bn if loss_inside else ref.bn
    assert int(bn.num_batches_tracked) == int(ref_bn.num_batches_tracked) == 10
    assert float(bn.running_var.min()) != 1.0  # the statistics moved
    _assert_state_close(model, ref)

    # Eval mode uses the running statistics; with no_grad it runs the forward model only.
    wrapper.eval()
    ref.eval()
    x, labels = data[0]
    with torch.no_grad():
        ours = wrapper(x, labels) if loss_inside else wrapper(x)
        theirs = ref(x, labels) if loss_inside else ref(x)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked) == 10


def test_non_scalar_output_with_torch_loss():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    ref = copy.deepcopy(net)
    data = list(_batches(10, (8, 6), seed=2))
    wrapper = graft.torch.Module(net, (data[0][0],))
    opt = torch.optim.SGD(wrapper.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    for x, t in data:
        for m, o in ((wrapper, opt), (ref, ref_opt)):
            o.zero_grad()
            nn.functional.smooth_l1_loss(m(x), t).backward()
            o.step()
    _assert_state_close(net, ref)


@pytest.mark.parametrize("loss_inside", [True, False])
def test_input_gradient_and_accumulation_match_autograd(loss_inside):
    torch.manual_seed(3)
    model = MLPWithLoss()
    ref = copy.deepcopy(model)
    x0, t = next(_batches(1, (5, 6), seed=3))
    inner, ref_inner = (model, ref) if loss_inside else (model.net, ref.net)
    wrapper = graft.torch.Module(inner, (x0, t) if loss_inside else (x0,))
    grads = []
    for m, net in ((wrapper, inner), (ref_inner, ref_inner)):
        x = x0.clone().requires_grad_(True)
        for _ in range(2):  # two backward passes: .grad accumulates
            out = m(x, t) if loss_inside else m(x)
            loss = out * 3.0 if loss_inside else nn.functional.mse_loss(out, t) * 3.0
            loss.backward()
        grads.append([x.grad] + [p.grad for p in net.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_several_inputs_and_outputs():
    torch.manual_seed(4)
    model = TwoHeads()
    ref = copy.deepcopy(model)
    g = torch.Generator().manual_seed(4)
    x, labels = torch.randn(7, 6, generator=g), torch.randint(0, 4, (7,), generator=g)
    scale = torch.tensor(1.5)
    wrapper = graft.torch.Module(model, (x, scale, labels))
    results = []
    for m in (wrapper, ref):
        s = scale.clone().requires_grad_(True)
        logits, loss, h = m(x, s, labels)
        (loss + 0.1 * (logits ** 2).sum() + h.mean()).backward()
        results.append([logits.detach(), loss.detach(), h.detach(), s.grad] + [p.grad for p in m.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_frozen_parameter_gets_no_gradient():
    torch.manual_seed(5)
    model = MLPWithLoss()
    model.net[0].weight.requires_grad_(False)
    frozen = model.net[0].weight.detach().clone()
    ref = copy.deepcopy(model)
    data = list(_batches(5, (8, 6), seed=5))
    wrapper = graft.torch.Module(model, data[0])
    opt = torch.optim.SGD([p for p in wrapper.parameters() if p.requires_grad], lr=0.1)
    ref_opt = torch.optim.SGD([p for p in ref.parameters() if p.requires_grad], lr=0.1)
    for x, t in data:
        for m, o in ((wrapper, opt), (ref, ref_opt)):
            o.zero_grad()
            m(x, t).backward()
            o.step()
    assert model.net[0].weight.grad is None
    assert torch.equal(model.net[0].weight, frozen)
    assert model.net[0].bias.grad is not None
    _assert_state_close(model, ref)


def test_dropout_mask_is_shared_by_forward_and_backward():
    torch.manual_seed(6)
    lin = nn.Linear(10, 32)
    net = nn.Sequential(lin, nn.Dropout(0.5))
    x = torch.randn(16, 10)
    wrapper = graft.torch.Module(net, (x,))
    r = torch.randn(16, 32)
    y = wrapper(x)
    (y * r).sum().backward()
    kept = (y != 0).float()  # the mask graft drew, read off the output
    assert 0.3 < float(kept.mean()) < 0.7
    ref = copy.deepcopy(lin)
    ref.weight.grad = None
    ref.bias.grad = None
    (ref(x) * kept * 2.0 * r).sum().backward()
    np.testing.assert_allclose(lin.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lin.bias.grad.numpy(), ref.bias.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_new_input_shape_is_exported_again():
    torch.manual_seed(7)
    net = nn.Sequential(nn.Linear(6, 4), nn.Sigmoid())
    wrapper = graft.torch.Module(net, (torch.randn(8, 6),))
    for n in (8, 3):
        x = torch.randn(n, 6)
        np.testing.assert_allclose(wrapper(x).detach().numpy(), net(x).detach().numpy(), rtol=1e-6, atol=1e-7)


def test_outputs_share_graft_memory():
    net = nn.Linear(6, 4)
    wrapper = graft.torch.Module(net, (torch.randn(2, 6),))
    with torch.no_grad():
        y = wrapper(torch.randn(2, 6))
    assert y.dtype == torch.float32 and y.shape == (2, 4)
    assert not y.requires_grad


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if int(self.fc(x).argmax()) > 7:  # a Python branch on a tensor value cannot be traced
            return x
        return self.fc(x) * 2


def test_module_that_cannot_be_exported():
    with pytest.raises(graft.torch.ExportError, match="could not export DataDependent"):
        graft.torch.Module(DataDependent(), (torch.randn(3, 4),))


_NO_GRADIENT_CANDIDATES = [("Tan", torch.tan), ("Atan", torch.atan), ("Asinh", torch.asinh), ("Sinh", torch.sinh),
                           ("Cosh", torch.cosh), ("Acos", torch.acos)]


def test_op_without_gradient_is_named():
    ruled = {op for _, op, _, _ in graft.autodiff.rule_ops()}
    missing = [(op, fn) for op, fn in _NO_GRADIENT_CANDIDATES if op not in ruled]
    if not missing:
        pytest.skip("every candidate op has a gradient rule")
    op, fn = missing[0]

    class Uses(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return fn(self.fc(x) * 0.1).sum()

    with pytest.raises(graft.NotImplemented, match=f"cannot differentiate the exported graph of Uses.*{op}"):
        graft.torch.Module(Uses(), (torch.randn(3, 4),))
