"""Optimizer steps as ONNX nodes (torch.optim's formulas): a gradient model becomes a
training-step model that outputs updated parameters and optimizer state."""

from __future__ import annotations

from typing import Sequence

import onnx

from . import _C


# torch.optim's default eps per optimizer.
_DEFAULT_EPS = {"adagrad": 1e-10}


def add_optimizer(gradient_model: onnx.ModelProto, params: Sequence[str], kind: str = "adamw", *,
                  momentum: float = 0.0, nesterov: bool = False, weight_decay: float | None = None,
                  betas: tuple[float, float] = (0.9, 0.999), eps: float | None = None, lr_decay: float = 0.0,
                  alpha: float = 0.99, centered: bool = False, max_grad_norm: float = 0.0) -> onnx.ModelProto:
    """Adds one `kind` step ("sgd", "adam", "adamw", "adagrad", "rmsprop") for `params` to a model from
    graft.autodiff.gradient_model. Inputs gain "graft.lr", "graft.step", the parameters and the
    state tensors "<p>.<kind>.<slot>"; outputs gain "<p>.new", "<state>.new" and "graft.step.new".
    weight_decay defaults as in torch.optim: 0.01 for AdamW, 0 otherwise. max_grad_norm > 0 clips
    the global gradient norm first, as torch.nn.utils.clip_grad_norm_ does."""
    if weight_decay is None:
        weight_decay = 0.01 if kind == "adamw" else 0.0
    if eps is None:
        eps = _DEFAULT_EPS.get(kind, 1e-8)
    data = _C.add_optimizer(gradient_model.SerializeToString(), list(params), kind, momentum, nesterov,
                            weight_decay, betas[0], betas[1], eps, lr_decay, alpha, centered, max_grad_norm)
    return onnx.load_from_string(data)
