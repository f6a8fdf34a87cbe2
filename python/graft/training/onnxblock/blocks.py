"""Blocks: callables that add nodes to the registered base model (onnxblock.base) and return the
names of the values they produce. Subclass Block and write `build` to make your own."""

from __future__ import annotations

import abc
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import _graph, model_accessor


class Block(abc.ABC):
    """A piece of graph. `block(*names)` runs `build(*names)` on the registered base model,
    available to `build` as `self.base`, and returns what `build` returns (value names).

    A subclass need not call Block.__init__."""

    base: onnx.ModelProto | None = None

    def __init__(self, temp_file_name: str = "temp.onnx") -> None:
        # temp_file_name: onnxruntime's scratch file for models over 2 GB; graft needs none.
        self.base = None

    @abc.abstractmethod
    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Adds this block's nodes to self.base; returns the names of its outputs."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.base = model_accessor.current().model
        return self.build(*args, **kwargs)

    def _add_node(self, op_type: str, inputs: Sequence[str], domain: str = "", outputs: int = 1,
                  **attributes: Any) -> str:
        """Appends one `op_type` node; returns its first output's name."""
        names = [_graph.fresh_name(f"{op_type.lower()}_output") for _ in range(outputs)]
        self.base.graph.node.append(helper.make_node(op_type, list(inputs), names, name=_graph.fresh_name(op_type),
                                                     domain=domain, **attributes))
        return names[0]

    def _add_initializer(self, token: str, value: np.ndarray) -> str:
        name = _graph.fresh_name(token)
        self.base.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name


class _BinaryOp(Block):
    _op_type = ""

    def __init__(self) -> None:
        super().__init__()

    def build(self, input_name1: str, input_name2: str) -> str:
        return self._add_node(self._op_type, [input_name1, input_name2])


class Add(_BinaryOp):
    _op_type = "Add"


class Sub(_BinaryOp):
    _op_type = "Sub"


class Mul(_BinaryOp):
    _op_type = "Mul"


class Div(_BinaryOp):
    _op_type = "Div"


class Pow(Block):
    """input ** exponent (a float)."""

    def __init__(self, exponent: float) -> None:
        super().__init__()
        self._exponent = exponent

    def build(self, pow_input_name: str) -> str:
        exponent = self._add_initializer("pow_exponent", np.array([self._exponent], np.float32))
        return self._add_node("Pow", [pow_input_name, exponent])


class _UnaryOp(Block):
    _op_type = ""

    def __init__(self, **attributes: Any) -> None:
        super().__init__()
        self._attributes = attributes

    def build(self, input_name: str) -> str:
        return self._add_node(self._op_type, [input_name], **self._attributes)


class ReduceMean(_UnaryOp):
    """The mean of all elements (keepdims: as a tensor of the input's rank)."""
    _op_type = "ReduceMean"

    def __init__(self, keepdims: bool = True) -> None:
        super().__init__(keepdims=int(keepdims))


class ReduceSum(_UnaryOp):
    """The sum of all elements."""
    _op_type = "ReduceSum"

    def __init__(self, keepdims: bool = True) -> None:
        super().__init__(keepdims=int(keepdims))


class Sigmoid(_UnaryOp):
    _op_type = "Sigmoid"


class Log(_UnaryOp):
    _op_type = "Log"


class Neg(_UnaryOp):
    _op_type = "Neg"


class Abs(_UnaryOp):
    _op_type = "Abs"


class Softplus(_UnaryOp):
    _op_type = "Softplus"


class Constant(Block):
    """A float constant (a one-element initializer)."""

    def __init__(self, value_float: float) -> None:
        super().__init__()
        self._value = value_float

    def build(self) -> str:
        return self._add_initializer("initializer", np.array([self._value], np.float32))


class SequenceConstruct(Block):
    def build(self, *sequence_input_names: str) -> str:
        return self._add_node("SequenceConstruct", sequence_input_names)


class ReduceAllL2(Block):
    """The L2 norm of all elements of all inputs together, a float scalar (standard ONNX ops;
    onnxruntime uses its com.microsoft ReduceAllL2)."""

    def build(self, *reduce_node_input_names: str) -> str:
        squares = [self._add_node("ReduceSumSquare", [name], keepdims=0) for name in reduce_node_input_names]
        total = squares[0] if len(squares) == 1 else self._add_node("Sum", squares)
        return self._add_node("Sqrt", [total])


class Clip(Block):
    """Clips to [clip_min, clip_max]; None leaves that side open."""

    def __init__(self, clip_min: float | None = None, clip_max: float | None = None) -> None:
        super().__init__()
        self._min = clip_min
        self._max = clip_max

    def build(self, clip_input_name: str) -> str:
        low = "" if self._min is None else self._add_initializer("clip_min", np.array(self._min, np.float32))
        high = "" if self._max is None else self._add_initializer("clip_max", np.array(self._max, np.float32))
        return self._add_node("Clip", [clip_input_name, low, high])


class PassThrough(Block):
    """Returns its input names unchanged (one name, or a tuple of several)."""

    def build(self, *input_names: str) -> str | tuple[str, ...]:
        return input_names[0] if len(input_names) == 1 else input_names


class InputLike(Block):
    """Adds a graph input with the type and shape of the graph input or output `like`; returns
    its name (`input_name`, or a fresh one)."""

    def __init__(self, like: str) -> None:
        super().__init__()
        self._like = like

    def build(self, input_name: str | None = None) -> str:
        value = onnx.ValueInfoProto()
        value.CopyFrom(typed_value(self.base, self._like))
        value.name = input_name or _graph.fresh_name("input")
        self.base.graph.input.append(value)
        return value.name


class LabelEncoder(Block):
    """ai.onnx.ml LabelEncoder with onnxruntime's keyword arguments."""

    def __init__(self, default_float: float = 0.0, default_int64: int = -1, default_string: str = "_Unused",
                 keys_floats: list[float] | None = None, keys_int64s: list[int] | None = None,
                 keys_strings: list[str] | None = None, values_floats: list[float] | None = None,
                 values_int64s: list[int] | None = None, values_strings: list[str] | None = None) -> None:
        super().__init__()
        given = {"keys_floats": keys_floats, "keys_int64s": keys_int64s, "keys_strings": keys_strings,
                 "values_floats": values_floats, "values_int64s": values_int64s, "values_strings": values_strings}
        self._attributes = {"default_float": default_float, "default_int64": default_int64,
                            "default_string": default_string,
                            **{k: v for k, v in given.items() if v is not None}}

    def build(self, label_encoder_input_name: str) -> str:
        if not any(o.domain == "ai.onnx.ml" for o in self.base.opset_import):
            self.base.opset_import.append(helper.make_opsetid("ai.onnx.ml", 2))
        return self._add_node("LabelEncoder", [label_encoder_input_name], domain="ai.onnx.ml", **self._attributes)


class Cast(Block):
    """Casts to ONNX element type `to` (a TensorProto.DataType)."""

    def __init__(self, to: int) -> None:
        super().__init__()
        self._to = to

    def build(self, cast_input_name: str) -> str:
        return self._add_node("Cast", [cast_input_name], to=int(self._to))


class Linear(Block):
    """alpha * input @ W + beta * b (Gemm), W of shape (in_features, out_features) and b of
    out_features, both new initializers drawn from a standard normal distribution."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, alpha: float = 1.0,
                 beta: float = 1.0) -> None:
        super().__init__()
        self._in, self._out, self._bias = in_features, out_features, bias
        self._alpha, self._beta = alpha, beta

    def build(self, linear_input_name: str) -> str:
        rng = np.random.default_rng()
        inputs = [linear_input_name,
                  self._add_initializer("linear.weight", rng.standard_normal((self._in, self._out), np.float32))]
        if self._bias:
            inputs.append(self._add_initializer("linear.bias", rng.standard_normal(self._out, np.float32)))
        return self._add_node("Gemm", inputs, alpha=float(self._alpha), beta=float(self._beta))


def typed_value(model: onnx.ModelProto, name: str) -> onnx.ValueInfoProto:
    """The ValueInfo of `name`: a graph output or input, or a value shape inference types.
    Raises LookupError naming it when its type is unknown."""
    for v in list(model.graph.output) + list(model.graph.input) + list(model.graph.value_info):
        if v.name == name:
            return v
    for v in _graph.infer_shapes(model).graph.value_info:
        if v.name == name:
            return v
    raise LookupError(f"'{name}' is not a graph input or output, and its type cannot be inferred")


def elem_type(model: onnx.ModelProto, name: str) -> int:
    return typed_value(model, name).type.tensor_type.elem_type or TensorProto.FLOAT
