"""TrainingSession(mixed_precision=...): the products in float16 or bfloat16 from float32 master
weights, against float32 training of the same PyTorch-exported MLP."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from graft.training import TrainingSession


def mlp_with_loss(path) -> str:
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))

        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return nn.functional.cross_entropy(self.body(x), labels)

    x = torch.randn(16, 20)
    labels = torch.randint(0, 5, (16,))
    torch.onnx.export(Net(), (x, labels), str(path), input_names=["x", "labels"], output_names=["loss"],
                      dynamo=True, external_data=False)
    return str(path)


def batches(n: int):
    """Two batches in turn, so the loss falls as the network fits them."""
    rng = np.random.default_rng(1)
    two = [{"x": rng.standard_normal((16, 20), dtype=np.float32), "labels": rng.integers(0, 5, 16)}
           for _ in range(2)]
    return [two[i % 2] for i in range(n)]


@pytest.mark.parametrize("compute,tol", [("float16", 5e-3), ("bfloat16", 4e-2)])
def test_follows_float32_training(tmp_path, compute, tol):
    path = mlp_with_loss(tmp_path / "mlp.onnx")
    low = TrainingSession(onnx.load(path), loss="loss", optimizer="sgd", lr=0.1, momentum=0.9,
                          mixed_precision=compute, loss_scale=1024.0)
    full = TrainingSession(onnx.load(path), loss="loss", optimizer="sgd", lr=0.1, momentum=0.9)
    losses = []
    for b in batches(20):
        losses.append((low.train_step(b), full.train_step(b)))
    assert low.skipped_steps == 0
    assert losses[-1][0] < losses[0][0]
    for a, b in losses:
        assert abs(a - b) <= tol * abs(b) + 1e-3
    for name, value in low.state().items():
        assert value.dtype == np.float32, name
    assert low.loss_scale == (1024.0 if compute == "float16" else 1.0)


def test_rejects_other_types(tmp_path):
    path = mlp_with_loss(tmp_path / "mlp.onnx")
    with pytest.raises(Exception, match="float16' or 'bfloat16"):
        TrainingSession(onnx.load(path), loss="loss", optimizer="sgd", mixed_precision="int8")
