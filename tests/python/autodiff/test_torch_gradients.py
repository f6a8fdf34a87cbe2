"""Gradients of PyTorch modules exported to ONNX: graft's gradient model against torch.autograd,
and the same gradient model run by onnxruntime."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import graft
import graft.autodiff


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(10, 32), nn.Linear(32, 16), nn.Linear(16, 4)

    def forward(self, x):
        return self.fc3(torch.tanh(self.fc2(torch.relu(self.fc1(x)))))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = nn.functional.avg_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class ConvStack(nn.Module):
    """Two 3x3 stride-1 convolutions: the second one's input gradient is the backward-data pass,
    which graft runs as Winograd for enough 4x4 output tiles (64 tiles of 32 channels here) and
    directly for small ones (2x2 outputs); MODELS holds one geometry of each."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(4, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


class DataDependentIf(nn.Module):
    """torch.cond on the input's sign: exported as an ONNX If with two branch graphs."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 5)
        self.scale = nn.Parameter(torch.randn(5))

    def forward(self, x):
        h = self.fc(x)
        return torch.cond(x.sum() > 0, lambda h: h * self.scale, lambda h: torch.tanh(h) - self.scale, (h,))


class LSTMHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


class WithLoss(nn.Module):
    """A linear layer followed by one of PyTorch's losses against a fixed target."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.fc = nn.Linear(6, 4)
        g = torch.Generator().manual_seed(5)
        if kind == "bce_with_logits":
            self.register_buffer("target", torch.randint(0, 2, (5, 4), generator=g).float())
        else:
            self.register_buffer("target", torch.randn(5, 4, generator=g))

    def forward(self, x):
        y = self.fc(x)
        f = nn.functional
        return {"mse": f.mse_loss, "l1": f.l1_loss, "huber": f.huber_loss,
                "bce_with_logits": f.binary_cross_entropy_with_logits}[self.kind](y, self.target)


def encoder_layer():
    return nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, batch_first=True)


def _randomize_batchnorm(model):
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


MODELS = {
    "if_then": (DataDependentIf, (3, 6)),
    "if_else": (DataDependentIf, (3, 6)),
    "mlp": (MLP, (6, 10)),
    "lstm": (LSTMHead, (2, 5, 6)),
    "cnn": (CNN, (2, 3, 16, 16)),
    "conv3x3_direct": (ConvStack, (2, 4, 2, 2)),
    "conv3x3_winograd": (ConvStack, (4, 4, 16, 16)),
    "encoder_layer": (encoder_layer, (2, 8, 32)),
    "mse_loss": (lambda: WithLoss("mse"), (5, 6)),
    "l1_loss": (lambda: WithLoss("l1"), (5, 6)),
    "huber_loss": (lambda: WithLoss("huber"), (5, 6)),
    "bce_with_logits_loss": (lambda: WithLoss("bce_with_logits"), (5, 6)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_gradients_match_torch(name, tmp_path):
    torch.manual_seed(0)
    factory, shape = MODELS[name]
    model = factory().eval()
    _randomize_batchnorm(model)
    x = torch.randn(*shape)
    if name.startswith("if_"):  # the sign of x.sum() picks the branch
        x = x.abs() if name == "if_then" else -x.abs()
    path = tmp_path / f"{name}.onnx"
    # optimize=False keeps the graph as traced (no BatchNormalization folding), so ONNX
    # initializers are the module's parameters.
    torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=["output"], dynamo=True,
                      external_data=False, optimize=False)
    forward = onnx.load(path)
    forward.ir_version = min(forward.ir_version, 10)
    params = dict(model.named_parameters())
    inits = {i.name for i in forward.graph.initializer}
    wrt = [p for p in params if p in inits]
    assert wrt == list(params), f"parameters missing from the exported graph: {set(params) - inits}"

    # loss = sum(output * r) for a fixed random r.
    out = model(x)
    r = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * r).sum().backward()
    r_init = onnx.numpy_helper.from_array(r.numpy(), "r")
    forward.graph.initializer.append(r_init)
    forward.graph.node.extend([onnx.helper.make_node("Mul", ["output", "r"], ["weighted"]),
                               onnx.helper.make_node("ReduceSum", ["weighted"], ["loss"], keepdims=0)])
    forward.graph.output.append(onnx.helper.make_tensor_value_info("loss", onnx.TensorProto.FLOAT, []))

    grad_model = graft.autodiff.gradient_model(forward, loss="loss", wrt=wrt)
    onnx.checker.check_model(grad_model)
    names = [o.name for o in grad_model.graph.output]
    feeds = {"input": x.numpy()}
    ours = dict(zip(names, graft.InferenceSession(grad_model.SerializeToString()).run(None, feeds)))
    theirs = dict(zip(names, ort.InferenceSession(grad_model.SerializeToString(),
                                                  providers=["CPUExecutionProvider"]).run(None, feeds)))
    worst = 0.0
    for p in wrt:
        want = params[p].grad.numpy()
        scale = max(np.abs(want).max(), 1e-12)
        rel = np.abs(ours[f"{p}_grad"] - want).max() / scale
        worst = max(worst, rel)
        assert rel < 1e-4, f"{name}: d loss / d {p}: relative error {rel:.2e} against torch.autograd"
        portable = np.abs(theirs[f"{p}_grad"] - ours[f"{p}_grad"]).max() / scale
        assert portable < 1e-4, f"{name}: onnxruntime disagrees with graft on {p}_grad ({portable:.2e})"
    print(f"{name}: {len(wrt)} parameters, worst relative error against torch.autograd {worst:.2e}")
