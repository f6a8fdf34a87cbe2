"""Training artifacts with onnxruntime's on-device training names (onnxruntime.training.artifacts):
`generate_artifacts` writes the training, eval and optimizer models (plain ONNX) and a checkpoint;
graft.training.api runs them.
"""

from __future__ import annotations

import enum
import os
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .. import autodiff, optim
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
STATISTIC_SUFFIX = ".new"


def _training_mode_batch_norms(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """BatchNormalization nodes that normalize with batch statistics (opset 14+ training_mode=1)
    and so output new running statistics."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 14:
        return []
    return [n for n in model.graph.node if n.op_type == "BatchNormalization" and n.domain in ("", "ai.onnx")
            and len(n.input) >= 5 and any(a.name == "training_mode" and a.i for a in n.attribute)]


def _updated_statistics(model: onnx.ModelProto) -> list[str]:
    """The running statistics (initializers) that training-mode BatchNormalization nodes update."""
    inits = {i.name for i in model.graph.initializer}
    stats: list[str] = []
    for node in _training_mode_batch_norms(model):
        stats += [s for s in node.input[3:5] if s in inits and s not in stats]
    return stats


def _expose_statistics(model: onnx.ModelProto, stats: Sequence[str]) -> onnx.ModelProto:
    """The training model's running statistics as state: each is an input, and the value its
    BatchNormalization computes is the output "<statistic>.new"."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name: i for i in m.graph.initializer}
    running: dict[str, str] = {}
    for node in _training_mode_batch_norms(m):
        while len(node.output) < 3:
            node.output.append("")
        for i in (3, 4):
            stat = node.input[i]
            if stat in stats and stat not in running:
                if not node.output[i - 2]:
                    node.output[i - 2] = f"{stat}{STATISTIC_SUFFIX}/running"
                running[stat] = node.output[i - 2]
    for stat in stats:
        t = inits[stat]
        m.graph.node.append(helper.make_node("Identity", [running[stat]], [stat + STATISTIC_SUFFIX],
                                             name=f"{stat}{STATISTIC_SUFFIX}/Identity"))
        m.graph.output.append(helper.make_tensor_value_info(stat + STATISTIC_SUFFIX, t.data_type, list(t.dims)))
    return m


def _in_inference_mode(model: onnx.ModelProto) -> onnx.ModelProto:
    """BatchNormalization normalizing with its running statistics (training_mode=0, no running
    outputs), as torch's module.eval()."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for node in _training_mode_batch_norms(m):
        for a in node.attribute:
            if a.name == "training_mode":
                a.i = 0
        del node.output[1:]
    return m


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
    stats = [s for s in _updated_statistics(with_loss) if s not in params]
    state_inputs = _with_parameter_inputs(with_loss, params + stats)
    eval_model = _in_inference_mode(state_inputs)
    training = autodiff.gradient_model(_expose_statistics(state_inputs, stats), loss="loss", wrt=params)
    # The update alone: gradients come in as "gradient/<p>".
    inits = {i.name: i for i in model.graph.initializer}
    nodes, inputs, outputs = [], [], []
    for p in params:
        t = inits[p]
        inputs.append(helper.make_tensor_value_info(f"gradient/{p}", t.data_type, list(t.dims)))
        nodes.append(helper.make_node("Identity", [f"gradient/{p}"], [f"{p}_grad"]))
        outputs.append(helper.make_tensor_value_info(f"{p}_grad", t.data_type, list(t.dims)))
    opset = max(18, next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")))
    update = helper.make_model(helper.make_graph(nodes, "optimizer_step", inputs, outputs, [inits[p] for p in params]),
                               opset_imports=[helper.make_opsetid("", opset)])
    update.ir_version = model.ir_version
    optimizer_model = optim.add_optimizer(update, params, optimizer.value, **optimizer_options)
    onnx.save(training, os.path.join(artifact_directory, "training_model.onnx"))
    onnx.save(eval_model, os.path.join(artifact_directory, "eval_model.onnx"))
    onnx.save(optimizer_model, os.path.join(artifact_directory, "optimizer_model.onnx"))
    save_checkpoint(os.path.join(artifact_directory, "checkpoint"),
                    {p: numpy_helper.to_array(inits[p]) for p in params + stats}, step=0,
                    properties={"graft.optimizer": optimizer.value})
