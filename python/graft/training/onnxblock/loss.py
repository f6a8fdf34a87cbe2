"""Loss blocks with torch.nn's formulas: each adds its target (or labels) as a graph input
when the model has no value of that name, and returns the name of the loss value."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from . import _graph, blocks

_REDUCTIONS = ("mean", "sum", "none")


def _reduction(reduction: str) -> blocks.Block:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return {"mean": blocks.ReduceMean, "sum": blocks.ReduceSum}[reduction](keepdims=False) \
        if reduction != "none" else blocks.PassThrough()


class MSELoss(blocks.Block):
    """reduction((input - target)^2), as torch.nn.MSELoss."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self._reduce = _reduction(reduction)
        self._sub, self._mul = blocks.Sub(), blocks.Mul()

    def build(self, loss_input_name: str, target_name: str = "target") -> str:
        if not _graph.value_exists(self.base, target_name):
            blocks.InputLike(loss_input_name)(target_name)
        diff = self._sub(loss_input_name, target_name)
        return self._reduce(self._mul(diff, diff))


class L1Loss(blocks.Block):
    """reduction(|input - target|), as torch.nn.L1Loss."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self._reduce = _reduction(reduction)
        self._sub, self._abs = blocks.Sub(), blocks.Abs()

    def build(self, loss_input_name: str, target_name: str = "target") -> str:
        if not _graph.value_exists(self.base, target_name):
            blocks.InputLike(loss_input_name)(target_name)
        return self._reduce(self._abs(self._sub(loss_input_name, target_name)))


class CrossEntropyLoss(blocks.Block):
    """torch.nn.CrossEntropyLoss of scores (N, C, d1, ...) against int64 class labels
    (N, d1, ...): ONNX SoftmaxCrossEntropyLoss, with an optional per-class `weight` (a NumPy
    array) and `ignore_index`."""

    def __init__(self, weight: np.ndarray | None = None, reduction: str = "mean",
                 ignore_index: int | None = None) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self._weight, self._reduction, self._ignore_index = weight, reduction, ignore_index

    def build(self, scores_input_name: str, labels_name: str = "labels") -> str:
        if not _graph.value_exists(self.base, labels_name):
            labels = onnx.ValueInfoProto()
            labels.CopyFrom(blocks.typed_value(self.base, scores_input_name))
            labels.name = labels_name
            tensor = labels.type.tensor_type
            tensor.elem_type = TensorProto.INT64
            if tensor.HasField("shape") and len(tensor.shape.dim) >= 2:
                del tensor.shape.dim[1]  # the class dimension
            self.base.graph.input.append(labels)
        inputs = [scores_input_name, labels_name]
        if self._weight is not None:
            inputs.append(self._add_initializer("celoss.weight", np.asarray(self._weight, np.float32)))
        attributes = {"reduction": self._reduction}
        if self._ignore_index is not None:
            attributes["ignore_index"] = int(self._ignore_index)
        return self._add_node("SoftmaxCrossEntropyLoss", inputs, outputs=2, **attributes)


class BCEWithLogitsLoss(blocks.Block):
    """torch.nn.BCEWithLogitsLoss: reduction(weight * ((1 - t) x + (1 + (pos_weight - 1) t)
    softplus(-x))), which stays finite for large |x| where log(sigmoid(x)) would not."""

    def __init__(self, weight: np.ndarray | None = None, reduction: str = "mean",
                 pos_weight: np.ndarray | None = None) -> None:
        super().__init__()
        self._reduce = _reduction(reduction)
        self._weight, self._pos_weight = weight, pos_weight

    def build(self, loss_input_name: str, target_name: str = "target") -> str:
        if not _graph.value_exists(self.base, target_name):
            blocks.InputLike(loss_input_name)(target_name)
        x, t = loss_input_name, target_name
        one = self._add_initializer("bceloss.one", np.array(1.0, np.float32))
        softplus = self._add_node("Softplus", [self._add_node("Neg", [x])])
        if self._pos_weight is not None:
            pos_weight = self._add_initializer("bceloss.pos_weight", np.asarray(self._pos_weight, np.float32))
            factor = self._add_node("Add", [one, self._add_node("Mul", [self._add_node("Sub", [pos_weight, one]), t])])
            softplus = self._add_node("Mul", [factor, softplus])
        loss = self._add_node("Add", [self._add_node("Mul", [self._add_node("Sub", [one, t]), x]), softplus])
        if self._weight is not None:
            loss = self._add_node("Mul", [self._add_initializer("bceloss.weight", np.asarray(self._weight, np.float32)),
                                          loss])
        return self._reduce(loss)
