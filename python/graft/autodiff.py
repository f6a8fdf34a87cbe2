"""Gradient graphs: turn a forward ONNX model into one that also outputs gradients.

The result is plain ONNX (standard ops, plus com.graft ops declared as model-local functions), so
onnxruntime or any other ONNX runtime can run it.
"""

from __future__ import annotations

import os
from typing import Sequence

import onnx

from . import _C


def _as_bytes(model: onnx.ModelProto | bytes | str | os.PathLike) -> bytes:
    if isinstance(model, onnx.ModelProto):
        return model.SerializeToString()
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    return onnx.load(os.fspath(model)).SerializeToString()


def gradient_model(model: onnx.ModelProto | bytes | str | os.PathLike, loss: str | None = None,
                   wrt: Sequence[str] | None = None) -> onnx.ModelProto:
    """Returns `model` with one more output per name in `wrt`, "<name>_grad", the gradient of
    output `loss` (default: the model's first output; summed if not a scalar). `wrt` defaults to
    every floating-point initializer."""
    data = _as_bytes(model)
    if loss is None:
        loss = onnx.load_from_string(data).graph.output[0].name
    return onnx.load_from_string(_C.gradient_model(data, loss, list(wrt or [])))


def rule_ops() -> list[tuple[str, str, int, int]]:
    """(domain, op_type, since, until) of every registered gradient rule."""
    return list(_C.gradient_rule_ops())
