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
    """Replaces the initializers of `model` that the checkpoint holds with its values."""
    tensors, _, properties = load_checkpoint(path_to_checkpoint)
    if NOMINAL_PROPERTY in properties:
        raise ValueError(f"checkpoint '{os.fspath(path_to_checkpoint)}' is nominal: it holds no parameter values")
    for i, t in enumerate(model.graph.initializer):
        if t.name in tensors:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.asarray(tensors[t.name]), t.name))
