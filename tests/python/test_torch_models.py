"""ResNet-18 and a 2-layer Transformer encoder exported from PyTorch: graft matches onnxruntime."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import graft
from torch_models import ResNet18, export, randomize_batchnorm, transformer_encoder


def _compare(path: str, x: np.ndarray) -> float:
    model = onnx.load(path)
    if model.ir_version > 10:
        model.ir_version = 10  # onnxruntime reads up to IR 13 only; the graph is unchanged
        onnx.save(model, path)
    expected = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    got = graft.InferenceSession(path).run(None, {"input": x})[0]
    assert got.shape == expected.shape and got.dtype == expected.dtype
    scale = np.abs(expected).max()
    rel = float(np.abs(got - expected).max() / scale)
    print(f"{path}: max |graft - onnxruntime| / max |onnxruntime| = {rel:.3g}")
    return rel


def test_resnet18_matches_onnxruntime(tmp_path):
    torch.manual_seed(0)
    model = ResNet18()
    randomize_batchnorm(model, seed=1)
    x = torch.randn(2, 3, 224, 224)
    path = str(tmp_path / "resnet18.onnx")
    export(model, (x,), path)
    assert _compare(path, x.numpy()) < 1e-4


def test_transformer_encoder_matches_onnxruntime(tmp_path):
    torch.manual_seed(0)
    model = transformer_encoder()
    x = torch.randn(2, 16, 64)
    path = str(tmp_path / "encoder.onnx")
    export(model, (x,), path)
    assert _compare(path, x.numpy()) < 1e-4
