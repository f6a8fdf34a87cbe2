"""The model that blocks build on: `base(model)` and `empty_base()` register it for the blocks
called inside the `with` statement (onnxruntime.training.onnxblock's model accessor)."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import onnx

_ACCESSOR: "ModelAccessor | None" = None
_CUSTOM_OP_LIBRARY: str | None = None


class ModelAccessor:
    """Holds the model the blocks edit in place; `model` is the result once the blocks ran."""

    def __init__(self, model: onnx.ModelProto, model_path: str | None = None) -> None:
        self._model = model
        self._path = model_path

    @property
    def model(self) -> onnx.ModelProto:
        return self._model

    @property
    def path(self) -> str:
        if self._path is None:
            raise RuntimeError("the base model was given without a path (onnxblock.base(model, model_path))")
        return self._path

    @property
    def has_path(self) -> bool:
        return self._path is not None


def current() -> ModelAccessor:
    """The registered accessor; raises when no `base`/`empty_base` block is active."""
    if _ACCESSOR is None:
        raise RuntimeError("no base model: call blocks inside `with onnxblock.base(model):` or "
                           "`with onnxblock.empty_base():`")
    return _ACCESSOR


@contextlib.contextmanager
def _registered(accessor: ModelAccessor) -> Iterator[ModelAccessor]:
    global _ACCESSOR
    if _ACCESSOR is not None:
        raise RuntimeError("a base model is already registered: onnxblock.base/empty_base do not nest")
    _ACCESSOR = accessor
    try:
        yield accessor
    finally:
        _ACCESSOR = None


@contextlib.contextmanager
def base(model: onnx.ModelProto, model_path: str | os.PathLike | None = None) -> Iterator[ModelAccessor]:
    """Registers a copy of `model` for the blocks called inside the `with` statement; the
    accessor it yields holds the edited copy. `model_path` names the file `model` came from (for
    models whose tensors live in external data files next to it)."""
    if model is None:
        raise RuntimeError("the base model is None: use onnxblock.empty_base() to build a model from scratch")
    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    with _registered(ModelAccessor(clone, os.fspath(model_path) if model_path is not None else None)) as accessor:
        yield accessor


@contextlib.contextmanager
def empty_base(opset_version: int | None = None) -> Iterator[ModelAccessor]:
    """Registers a new, empty model (default-domain opset `opset_version`, default onnx's newest)."""
    model = onnx.ModelProto()
    model.ir_version = onnx.IR_VERSION
    model.producer_name = "graft"
    model.graph.name = "graph"
    model.opset_import.append(onnx.helper.make_opsetid("", opset_version or onnx.defs.onnx_opset_version()))
    with _registered(ModelAccessor(model)) as accessor:
        yield accessor


@contextlib.contextmanager
def custom_op_library(custom_op_library_path: str | os.PathLike) -> Iterator[str]:
    """onnxruntime registers a compiled custom-op library here for its gradient builder. graft
    builds gradients from ONNX graphs alone, so the library is only checked to exist: a custom
    op's gradient needs a graft gradient rule (graft.autodiff), and running it a kernel
    registered with graft."""
    global _CUSTOM_OP_LIBRARY
    if _CUSTOM_OP_LIBRARY is not None:
        raise RuntimeError("a custom op library is already registered")
    path = os.fspath(custom_op_library_path)
    if not os.path.exists(path):
        raise RuntimeError(f"Custom op library path {path} does not exist.")
    _CUSTOM_OP_LIBRARY = path
    try:
        yield path
    finally:
        _CUSTOM_OP_LIBRARY = None
