"""Optimizer blocks: called on (trainable, frozen) parameters inside onnxblock.empty_base(), they
make the accessor's model graft's optimizer model (graft.optim's update graph, what
graft.training.api.Optimizer runs): inputs "graft.lr", "graft.step", "gradient/<p>", the
parameters and the optimizer state; outputs "<p>.new", "<state>.new" and "graft.step.new"."""

from __future__ import annotations

from typing import Any, Sequence

import onnx

from ... import _C
from ... import optim as _optim
from . import blocks, model_accessor


class ClipGradNorm(blocks.Block):
    """Scales all gradients together so that their global L2 norm is at most max_norm
    (torch.nn.utils.clip_grad_norm_), as the `clip_grad` of SGD or AdamW: graft clips inside its
    optimizer update. Called on its own it raises NotImplementedError: onnxruntime's version is
    its com.microsoft InplaceClipGradNorm op on a tensor sequence, which graft does not have."""

    def __init__(self, max_norm: float) -> None:
        super().__init__()
        if not max_norm > 0:
            raise ValueError(f"max_norm must be > 0, got {max_norm}")
        self.max_norm = float(max_norm)

    def build(self, gradients_name: str) -> str:
        raise NotImplementedError("graft clips gradients inside its optimizer update: pass ClipGradNorm as "
                                  "clip_grad of onnxblock.optim.SGD or AdamW (onnxruntime's standalone block is "
                                  "its com.microsoft InplaceClipGradNorm op, which graft does not have)")


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
