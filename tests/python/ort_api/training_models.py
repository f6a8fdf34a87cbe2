"""A two-layer perceptron as ONNX (torch.nn.Linear's layout) and as torch, for the training-API
tests: the torch module is the independent reference for losses, gradients and updates."""

from __future__ import annotations

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper

IN, HIDDEN, OUT, BATCH = 6, 5, 3, 4


def torch_mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, OUT))


def onnx_mlp(net: torch.nn.Module, opset: int = 14):
    """output = fc2(tanh(fc1(input))) with the weights of `net` as initializers fc1.weight, ..."""
    names = {"0.weight": "fc1.weight", "0.bias": "fc1.bias", "2.weight": "fc2.weight", "2.bias": "fc2.bias"}
    inits = [numpy_helper.from_array(p.detach().numpy().copy(), names[n]) for n, p in net.named_parameters()]
    nodes = [helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["h"], transB=1),
             helper.make_node("Tanh", ["h"], ["a"]),
             helper.make_node("Gemm", ["a", "fc2.weight", "fc2.bias"], ["output"], transB=1)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", IN])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", OUT])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def torch_params(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    names = {"0.weight": "fc1.weight", "0.bias": "fc1.bias", "2.weight": "fc2.weight", "2.bias": "fc2.bias"}
    return {names[n]: p for n, p in net.named_parameters()}


def batch(seed: int = 1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((BATCH, IN)).astype(np.float32),
            rng.integers(0, OUT, BATCH).astype(np.int64),
            rng.standard_normal((BATCH, OUT)).astype(np.float32))
