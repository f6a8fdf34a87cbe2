"""Optimizer blocks: called on (trainable, frozen) parameters inside onnxblock.empty_base(), they
make the accessor's model graft's optimizer model (graft.optim's update graph, what
graft.training.api.Optimizer runs): inputs "graft.lr", "graft.step", "gradient/<p>", the
parameters and the optimizer state; outputs "<p>.new", "<state>.new" and "graft.step.new"."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from ... import _C
from ... import optim as _optim
from . import _graph, blocks, model_accessor


class ClipGradNorm(blocks.Block):
    """Scales gradients together so that their global L2 norm is at most max_norm, as
    torch.nn.utils.clip_grad_norm_ (coefficient max_norm / (norm + 1e-6), at most 1).

    As the `clip_grad` of SGD or AdamW, graft clips inside its optimizer update. Called on the
    name of a tensor sequence of gradients, it adds standard ONNX nodes (two Loops over the
    sequence; onnxruntime uses its com.microsoft InplaceClipGradNorm op) and returns the name of
    the clipped sequence."""

    def __init__(self, max_norm: float) -> None:
        super().__init__()
        if not max_norm > 0:
            raise ValueError(f"max_norm must be > 0, got {max_norm}")
        self.max_norm = float(max_norm)

    def build(self, gradients_name: str) -> str:
        g = self.base.graph
        elem = TensorProto.FLOAT
        for v in list(g.input) + list(g.value_info):
            if v.name == gradients_name and v.type.sequence_type.elem_type.tensor_type.elem_type:
                elem = v.type.sequence_type.elem_type.tensor_type.elem_type
        dtype = helper.tensor_dtype_to_np_dtype(elem)
        count = self._add_node("SequenceLength", [gradients_name])
        zero = self._add_initializer("clip_grad_norm.zero", np.array(0, dtype))

        def body(name: str, carried: str, nodes: list, out_type: onnx.TypeProto) -> onnx.GraphProto:
            i, cond = _graph.fresh_name("i"), _graph.fresh_name("cond")
            inputs = [helper.make_tensor_value_info(i, TensorProto.INT64, []),
                      helper.make_tensor_value_info(cond, TensorProto.BOOL, []),
                      helper.make_value_info(carried, out_type)]
            cond_out = _graph.fresh_name("cond_out")
            nodes = [helper.make_node("Identity", [cond], [cond_out]),
                     *[helper.make_node(op, [i if x == "<i>" else x for x in ins], outs, **attrs)
                       for op, ins, outs, attrs in nodes]]
            outputs = [helper.make_tensor_value_info(cond_out, TensorProto.BOOL, []),
                       helper.make_value_info(nodes[-1].output[0], out_type)]
            return helper.make_graph(nodes, name, inputs, outputs)

        scalar = helper.make_tensor_type_proto(elem, [])
        sequence = helper.make_sequence_type_proto(helper.make_tensor_type_proto(elem, None))
        acc, item, square, total = (_graph.fresh_name(t) for t in ("acc", "item", "square", "total"))
        sum_body = body("clip_grad_norm_sum", acc, [
            ("SequenceAt", [gradients_name, "<i>"], [item], {}),
            ("ReduceSumSquare", [item], [square], {"keepdims": 0}),
            ("Add", [acc, square], [total], {})], scalar)
        squares = self._add_node("Loop", [count, "", zero], body=sum_body)
        norm = self._add_node("Sqrt", [squares])
        eps = self._add_initializer("clip_grad_norm.eps", np.array(1e-6, dtype))
        max_norm = self._add_initializer("clip_grad_norm.max_norm", np.array(self.max_norm, dtype))
        one = self._add_initializer("clip_grad_norm.one", np.array(1, dtype))
        coef = self._add_node("Min", [self._add_node("Div", [max_norm, self._add_node("Add", [norm, eps])]), one])
        seq, item, scaled, grown = (_graph.fresh_name(t) for t in ("seq", "item", "scaled", "grown"))
        scale_body = body("clip_grad_norm_scale", seq, [
            ("SequenceAt", [gradients_name, "<i>"], [item], {}),
            ("Mul", [item, coef], [scaled], {}),
            ("SequenceInsert", [seq, scaled], [grown], {})], sequence)
        empty = self._add_node("SequenceEmpty", [], dtype=elem)
        clipped = self._add_node("Loop", [count, "", empty], body=scale_body)
        g.value_info.append(helper.make_value_info(clipped, sequence))
        return clipped


class _Optimizer(blocks.Block):
    _kind = ""
    _model: onnx.ModelProto | None = None

    def __init__(self, clip_grad: ClipGradNorm | None = None) -> None:
        super().__init__()
        if clip_grad is not None and not isinstance(clip_grad, ClipGradNorm):
            raise TypeError(f"clip_grad must be an onnxblock.optim.ClipGradNorm, got {type(clip_grad).__name__}")
        self._clip_grad = clip_grad
        self._model = None

    def _options(self) -> dict[str, Any]:
        return {}

    def build(self, parameters: tuple[Sequence[onnx.TensorProto], Sequence[onnx.TensorProto]]) -> onnx.ModelProto:
        trainable = list(parameters[0])
        if not trainable:
            raise ValueError("the optimizer has no trainable parameters to update")
        holder = onnx.ModelProto()
        holder.CopyFrom(self.base)
        holder.graph.initializer.extend(trainable)
        names = [t.name for t in trainable]
        update = onnx.load_from_string(_C.gradients_as_inputs(holder.SerializeToString(), names))
        max_norm = self._clip_grad.max_norm if self._clip_grad is not None else 0.0
        model = _optim.add_optimizer(update, names, self._kind, max_grad_norm=max_norm, **self._options())
        # The parameters come from the checkpoint state: inputs without a copy in the model.
        kept = [t for t in model.graph.initializer if t.name not in set(names)]
        del model.graph.initializer[:]
        model.graph.initializer.extend(kept)
        return model

    def __call__(self, parameters: tuple[Sequence[onnx.TensorProto], Sequence[onnx.TensorProto]]) -> str:
        """Makes the accessor's model this optimizer's model for `parameters`; returns the name
        of its last output, the new step count, which the update is complete once computed."""
        accessor = model_accessor.current()
        self.base = accessor.model
        model = self.build(parameters)
        accessor.model.CopyFrom(model)
        self._model = model
        return _C.names.STEP + _C.names.NEW_SUFFIX

    def to_model_proto(self) -> onnx.ModelProto:
        if self._model is None:
            raise RuntimeError("Please build the optimizer model first before trying to retrieve it.")
        return self._model


class SGD(_Optimizer):
    """p -= lr * g (torch.optim.SGD without momentum)."""
    _kind = "sgd"


class AdamW(_Optimizer):
    """torch.optim.AdamW's update with onnxruntime's defaults (eps 1e-6, no weight decay):
    weight decay is decoupled, p -= lr * weight_decay * p, applied before the Adam step as in
    torch (onnxruntime's AdamW applies it after). bias_correction=False is not supported: graft's
    update always corrects the moments' bias."""
    _kind = "adamw"

    def __init__(self, bias_correction: bool = True, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, clip_grad: ClipGradNorm | None = None) -> None:
        super().__init__(clip_grad)
        if not bias_correction:
            raise NotImplementedError("onnxblock.optim.AdamW(bias_correction=False): graft's AdamW update always "
                                      "corrects the moments' bias")
        self._betas, self._eps, self._weight_decay = (float(betas[0]), float(betas[1])), float(eps), float(weight_decay)

    def _options(self) -> dict[str, Any]:
        return {"betas": self._betas, "eps": self._eps, "weight_decay": self._weight_decay}
