"""Checkpoints of (trainable, frozen) parameters, in graft's checkpoint format
(graft.checkpoint), which graft.training.api.CheckpointState loads."""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from ...checkpoint import load_checkpoint, save_checkpoint as _save

# Properties graft's training API keeps in a checkpoint beside the user's.
FROZEN_PROPERTY = "graft.frozen"  # the names of frozen parameters, one a line
NOMINAL_PROPERTY = "graft.nominal"  # a nominal checkpoint: JSON {name: shape}; tensors have no elements


def save_checkpoint(parameters: tuple[Sequence[onnx.TensorProto], Sequence[onnx.TensorProto]],
                    path_to_checkpoint: str | os.PathLike, nominal_checkpoint: bool = False) -> None:
    """Writes the parameters, trainable and frozen, to the file `path_to_checkpoint`. A nominal
    checkpoint records each parameter's name, element type and shape but not its values: a
    Module built on it trains once the values are copied in (Module.copy_buffer_to_parameters)."""
    if parameters is None:
        raise ValueError("no parameters given to save")
    trainable, frozen = parameters
    arrays = {t.name: numpy_helper.to_array(t) for t in [*trainable, *frozen]}
    if len(arrays) != len(trainable) + len(frozen):
        raise ValueError("a parameter name occurs twice among the trainable and frozen parameters")
    properties = {FROZEN_PROPERTY: "\n".join(t.name for t in frozen)}
    if nominal_checkpoint:
        properties[NOMINAL_PROPERTY] = json.dumps({name: list(a.shape) for name, a in arrays.items()})
        arrays = {name: np.empty(0, a.dtype) for name, a in arrays.items()}
    _save(path_to_checkpoint, arrays, step=0, properties=properties)


def load_checkpoint_to_model(path_to_checkpoint: str | os.PathLike, model: onnx.ModelProto) -> None:
    """Replaces the initializers of `model` that the checkpoint holds with its values, all or
    none: a checkpoint value of another element type or shape than the initializer it would
    replace raises ValueError naming both, and `model` is then unchanged."""
    where = f"checkpoint '{os.fspath(path_to_checkpoint)}'"
    tensors, _, properties = load_checkpoint(path_to_checkpoint)
    if NOMINAL_PROPERTY in properties:
        raise ValueError(f"{where} is nominal: it holds no parameter values")
    replacements = {}
    for i, t in enumerate(model.graph.initializer):
        if t.name not in tensors:
            continue
        value = np.asarray(tensors[t.name])
        new = numpy_helper.from_array(value, t.name)
        if new.data_type != t.data_type or list(new.dims) != list(t.dims):
            raise ValueError(f"{where}: tensor '{t.name}' is {value.dtype} {list(value.shape)}, the model's "
                             f"initializer is {onnx.helper.tensor_dtype_to_np_dtype(t.data_type)} {list(t.dims)}")
        replacements[i] = new
    for i, new in replacements.items():
        model.graph.initializer[i].CopyFrom(new)
