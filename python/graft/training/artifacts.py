"""Training artifacts with onnxruntime's on-device training names (onnxruntime.training.artifacts):
`generate_artifacts` writes the training, eval and optimizer models (plain ONNX) and a checkpoint;
graft.training.api runs them.
"""

from __future__ import annotations

import enum
import os
from typing import Sequence

import onnx
from onnx import TensorProto, helper, numpy_helper

from .. import _C, autodiff, optim
from ..checkpoint import save_checkpoint


class LossType(enum.Enum):
    MSELoss = "mse"
    CrossEntropyLoss = "cross_entropy"
    BCEWithLogitsLoss = "bce_with_logits"
    L1Loss = "l1"


class OptimType(enum.Enum):
    SGD = "sgd"
    Adam = "adam"
    AdamW = "adamw"


def _append_loss(model: onnx.ModelProto, loss: LossType) -> onnx.ModelProto:
    """Adds `loss` of the model's first output against a new input "labels"/"target"."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    out = m.graph.output[0]
    elem = out.type.tensor_type.elem_type
    shape = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    g = m.graph
    if loss == LossType.CrossEntropyLoss:
        g.input.append(helper.make_tensor_value_info("labels", TensorProto.INT64, shape[:1] + shape[2:]))
        g.node.append(helper.make_node("SoftmaxCrossEntropyLoss", [out.name, "labels"], ["loss"], reduction="mean"))
    else:
        g.input.append(helper.make_tensor_value_info("target", elem, shape))
        if loss == LossType.MSELoss:
            g.node.extend([helper.make_node("Sub", [out.name, "target"], ["loss/diff"]),
                           helper.make_node("Mul", ["loss/diff", "loss/diff"], ["loss/sq"]),
                           helper.make_node("ReduceMean", ["loss/sq"], ["loss"], keepdims=0)])
        elif loss == LossType.L1Loss:
            g.node.extend([helper.make_node("Sub", [out.name, "target"], ["loss/diff"]),
                           helper.make_node("Abs", ["loss/diff"], ["loss/abs"]),
                           helper.make_node("ReduceMean", ["loss/abs"], ["loss"], keepdims=0)])
        else:  # BCE with logits: mean(softplus(x) - x * t), the stable form
            g.node.extend([helper.make_node("Softplus", [out.name], ["loss/sp"]),
                           helper.make_node("Mul", [out.name, "target"], ["loss/xt"]),
                           helper.make_node("Sub", ["loss/sp", "loss/xt"], ["loss/each"]),
                           helper.make_node("ReduceMean", ["loss/each"], ["loss"], keepdims=0)])
    g.output.append(helper.make_tensor_value_info("loss", elem, []))
    return m


def _with_parameter_inputs(model: onnx.ModelProto, params: Sequence[str]) -> onnx.ModelProto:
    inits = {i.name: i for i in model.graph.initializer}
    inputs = {i.name for i in model.graph.input}
    for p in params:
        if p not in inputs:
            t = inits[p]
            model.graph.input.append(helper.make_tensor_value_info(p, t.data_type, list(t.dims)))
    return model


# The suffix of the graph output that carries a running statistic's new value in the training
# model (as TrainingSession names it).
STATISTIC_SUFFIX = _C.names.NEW_SUFFIX


def _native(fn, model: onnx.ModelProto, *args) -> onnx.ModelProto:
    """`model` rewritten by one of TrainingSession's running-statistics passes in graft._C."""
    return onnx.load_from_string(fn(model.SerializeToString(), *args))


def generate_artifacts(model: onnx.ModelProto, requires_grad: Sequence[str] | None = None,
                       frozen_params: Sequence[str] | None = None, loss: LossType = LossType.CrossEntropyLoss,
                       optimizer: OptimType = OptimType.AdamW, artifact_directory: str | os.PathLike = ".",
                       **optimizer_options) -> None:
    """Writes training_model.onnx (forward, loss and gradients "<p>_grad"), eval_model.onnx (forward
    and loss), optimizer_model.onnx (the update from gradients) and checkpoint (the parameters) to
    `artifact_directory`. Parameters default to every float initializer not in frozen_params, but
    BatchNormalization running statistics, which are buffers, not parameters: for a node in
    training mode, the statistics are inputs of the training model, which outputs their new values
    as "<statistic>.new" (the Module keeps them in its state), and the eval model normalizes
    with them (training_mode=0); the checkpoint holds their initial values."""
    os.makedirs(artifact_directory, exist_ok=True)
    frozen = set(frozen_params or [])
    statistics = {name for node in model.graph.node if node.op_type == "BatchNormalization" and not node.domain
                  for name in node.input[3:5]}
    if requires_grad is None:
        requires_grad = [i.name for i in model.graph.initializer
                         if i.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE) and i.name not in frozen
                         and i.name not in statistics]
    params = [p for p in requires_grad if p not in frozen]
    with_loss = _append_loss(model, loss)
    stats = [s for s in _C.updated_statistics(with_loss.SerializeToString()) if s not in params]
    state_inputs = _with_parameter_inputs(with_loss, params + stats)
    eval_model = _native(_C.in_inference_mode, state_inputs)
    training = autodiff.gradient_model(_native(_C.expose_running_statistics, state_inputs, stats), loss="loss",
                                       wrt=params)
    # The update alone: gradients come in as "gradient/<p>".
    update = onnx.load_from_string(_C.gradients_as_inputs(model.SerializeToString(), params))
    inits = {i.name: i for i in model.graph.initializer}
    optimizer_model = optim.add_optimizer(update, params, optimizer.value, **optimizer_options)
    onnx.save(training, os.path.join(artifact_directory, "training_model.onnx"))
    onnx.save(eval_model, os.path.join(artifact_directory, "eval_model.onnx"))
    onnx.save(optimizer_model, os.path.join(artifact_directory, "optimizer_model.onnx"))
    save_checkpoint(os.path.join(artifact_directory, "checkpoint"),
                    {p: numpy_helper.to_array(inits[p]) for p in params + stats}, step=0,
                    properties={"graft.optimizer": optimizer.value})
