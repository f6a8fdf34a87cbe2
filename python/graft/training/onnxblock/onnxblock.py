"""ForwardBlock and TrainingBlock: blocks that turn the base model they are called on into a
complete model (a forward model; a training model and an eval model)."""

from __future__ import annotations

import abc
from typing import Any, Sequence

import onnx

from . import _graph, _training, blocks, model_accessor


def _names(output: str | Sequence[str]) -> list[str]:
    return [output] if isinstance(output, str) else list(output)


class ForwardBlock(blocks.Block):
    """Calling it runs `build` on the base model and makes what `build` returns the model's
    outputs; `to_model_proto()` is the result (the accessor's model too)."""

    _model: onnx.ModelProto | None = None

    def __init__(self) -> None:
        super().__init__()
        self._model = None

    @abc.abstractmethod
    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Adds nodes to self.base; returns the name(s) of the model's outputs."""

    def to_model_proto(self) -> onnx.ModelProto:
        if self._model is None:
            raise RuntimeError("Please build the forward models first before trying to retrieve it.")
        return self._model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        accessor = model_accessor.current()
        self.base = accessor.model
        output = self.build(*args, **kwargs)
        model = _graph.infer_shapes(self.base)
        _graph.set_outputs(model, _names(output))
        accessor.model.CopyFrom(model)
        self._model = model
        return output


class TrainingBlock(blocks.Block):
    """Calling it runs `build` on the base model, whose first returned name is the loss, and
    builds the training model (graft's gradient graph for the parameters marked with
    requires_grad) and the eval model. No parameter requires a gradient unless marked."""

    _requires_grad: set[str] = set()
    _frozen_params: set[str] = set()
    _parameters: tuple[list[onnx.TensorProto], list[onnx.TensorProto]] | None = None
    _training_model: onnx.ModelProto | None = None
    _eval_model: onnx.ModelProto | None = None

    def __init__(self) -> None:
        super().__init__()
        self._requires_grad = set()
        self._frozen_params = set()
        self._parameters = None
        self._training_model = None
        self._eval_model = None

    @abc.abstractmethod
    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Adds nodes to self.base; returns the loss name (then any other outputs)."""

    def requires_grad(self, argument_name: str, value: bool = True) -> None:
        """Marks the initializer `argument_name` trainable (value=True) or frozen: a frozen
        parameter is read from the checkpoint like a trainable one, but not trained. A graph
        input marked trainable gets a "<input>_grad" output but is no parameter."""
        requires, frozen = set(self._requires_grad), set(self._frozen_params)
        (requires if value else frozen).add(argument_name)
        (frozen if value else requires).discard(argument_name)
        self._requires_grad, self._frozen_params = requires, frozen

    def parameters(self) -> tuple[list[onnx.TensorProto], list[onnx.TensorProto]]:
        """(trainable, frozen) parameters as initializers of the base model, in its order."""
        if self._parameters is None:
            raise RuntimeError("Please build the training model first before trying to retrieve the parameters.")
        return self._parameters

    def to_model_proto(self) -> tuple[onnx.ModelProto, onnx.ModelProto]:
        """(training model, eval model)."""
        if self._training_model is None or self._eval_model is None:
            raise RuntimeError("Please build the training and eval models first before trying to retrieve them.")
        return self._training_model, self._eval_model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        accessor = model_accessor.current()
        self.base = accessor.model
        output = self.build(*args, **kwargs)
        model = _graph.infer_shapes(self.base)
        names = _names(output)
        _graph.set_outputs(model, names)
        known = {t.name for t in model.graph.initializer} | {i.name for i in model.graph.input}
        unknown = (self._requires_grad | self._frozen_params) - known
        if unknown:
            raise ValueError(f"requires_grad names {sorted(unknown)}, which are neither initializers nor inputs "
                             "of the model")
        self._parameters = _training.parameters(model, self._requires_grad, self._frozen_params)
        self._training_model, self._eval_model = _training.build(model, self._requires_grad, self._frozen_params,
                                                                 names)
        accessor.model.CopyFrom(self._training_model)
        return output
