"""The training and eval models of a forward model whose first output is the loss, with graft's
gradient graph (graft.autodiff): parameters become graph inputs that the training API feeds from
its checkpoint state, "<p>_grad" outputs follow the user outputs, and BatchNormalization running
statistics are state ("<statistic>.new" outputs, as graft's TrainingSession keeps them)."""

from __future__ import annotations

from typing import Iterable, Sequence

import onnx
from onnx import helper

from ... import _C, autodiff


def parameters(model: onnx.ModelProto, requires_grad: Iterable[str],
               frozen_params: Iterable[str]) -> tuple[list[onnx.TensorProto], list[onnx.TensorProto]]:
    """(trainable, frozen) initializers of `model`, in initializer order. Frozen ones include the
    running statistics of BatchNormalization nodes in training mode that are not trained."""
    trainable_names, frozen_names = set(requires_grad), set(frozen_params)
    frozen_names |= set(running_statistics(model)) - trainable_names
    trainable, frozen = [], []
    for t in model.graph.initializer:
        if t.name in trainable_names:
            trainable.append(t)
        elif t.name in frozen_names:
            frozen.append(t)
    return trainable, frozen


def running_statistics(model: onnx.ModelProto) -> list[str]:
    return list(_C.updated_statistics(model.SerializeToString()))


def _in_inference_mode(model: onnx.ModelProto) -> None:
    """Dropout without its training_mode input (""), BatchNormalization with training_mode=0
    and its one inference output, as torch's module.eval()."""
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Dropout" and len(node.input) > 2:
            node.input[2] = ""
        elif node.op_type == "BatchNormalization":
            for attr in node.attribute:
                if attr.name == "training_mode" and attr.i:
                    attr.i = 0
                    del node.output[1:]


def _initializers_to_inputs(model: onnx.ModelProto, names: set[str]) -> None:
    inputs = {i.name for i in model.graph.input}
    kept = []
    for t in model.graph.initializer:
        if t.name not in names:
            kept.append(t)
        elif t.name not in inputs:
            model.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def build(model: onnx.ModelProto, requires_grad: Iterable[str], frozen_params: Iterable[str],
          output_names: Sequence[str]) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(training model, eval model) of `model`, whose outputs are `output_names`, the first the
    loss. The training model outputs `output_names`, then "<p>_grad" per trainable parameter in
    initializer order (and per graph input in `requires_grad`), then "<s>.new" per running
    statistic; both models read the parameters, frozen parameters and statistics as graph
    inputs."""
    trainable, frozen = parameters(model, requires_grad, frozen_params)
    trainable_names = [t.name for t in trainable]
    state = set(trainable_names) | {t.name for t in frozen}
    statistics = [s for s in running_statistics(model) if s not in trainable_names]

    eval_model = onnx.ModelProto()
    eval_model.CopyFrom(model)
    _in_inference_mode(eval_model)
    _initializers_to_inputs(eval_model, state)

    training = onnx.ModelProto()
    training.CopyFrom(model)
    if statistics:
        training = onnx.load_from_string(_C.expose_running_statistics(model.SerializeToString(), statistics))
    _initializers_to_inputs(training, state)
    inputs = [i.name for i in model.graph.input if i.name in set(requires_grad)]
    wrt = trainable_names + inputs
    if wrt:
        training = autodiff.gradient_model(training, loss=output_names[0], wrt=wrt)
    order = list(output_names) + [p + _C.names.GRAD_SUFFIX for p in wrt] + \
        [s + _C.names.NEW_SUFFIX for s in statistics]
    by_name = {o.name: o for o in training.graph.output}
    outputs = [by_name[name] for name in order]
    del training.graph.output[:]
    training.graph.output.extend(outputs)
    return training, eval_model
