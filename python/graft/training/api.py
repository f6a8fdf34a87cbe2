"""onnxruntime's on-device training interface (onnxruntime.training.api: CheckpointState, Module,
Optimizer, LinearLRScheduler) over the artifacts of graft.training.generate_artifacts.

The objects are graft's C++ training API (train/training_api.h) bound to Python; this module
keeps onnxruntime's Python surface (parameters and properties as mappings, OrtValue in and out,
nominal checkpoints) and converts between NumPy and graft's values. graft's torch-style
schedules (ConstantLR, LinearLR, StepLR, CosineAnnealingLR from graft.lr_scheduler) also drive
an Optimizer here, through its `learning_rate` property."""

from __future__ import annotations

import json
import os
import weakref
from typing import Any, Iterator, Sequence

import numpy as np

from .. import _C
from ..iobinding import OrtValue
from ..lr_scheduler import ConstantLR, CosineAnnealingLR, LinearLR, LRScheduler, StepLR
from ..session import _from_native, _to_native
from .onnxblock.checkpoint_utils import FROZEN_PROPERTY, NOMINAL_PROPERTY

__all__ = ["CheckpointState", "ConstantLR", "CosineAnnealingLR", "LRScheduler", "LinearLR", "LinearLRScheduler",
           "Module", "Optimizer", "Parameter", "Parameters", "Properties", "StepLR"]

# graft keeps its own entries among a checkpoint's properties under this prefix; a property's
# Python type (int, float, str) is the entry "graft.type.<name>".
_RESERVED = "graft."
_TYPE_PREFIX = "graft.type."


def _arrays(native: dict) -> dict[str, np.ndarray]:
    """Copies: writing into a returned array never changes the state behind it."""
    return {name: np.array(_from_native(value)) for name, value in native.items()}


def _not_loaded(what: str, state: "CheckpointState") -> RuntimeError:
    return RuntimeError(f"{what}: the checkpoint state was loaded from a nominal checkpoint "
                        f"({', '.join(sorted(state._unloaded))} hold no values yet; "
                        "Module.copy_buffer_to_parameters loads them)")


def _nominal_shapes(path: str, text: str, parameters: dict) -> dict[str, tuple[list[int], np.dtype]]:
    """The shape and element type of each parameter of a nominal checkpoint, from its
    NOMINAL_PROPERTY `text` (JSON {name: shape}). Raises graft.InvalidArgument naming the file
    and the parameter for a shape that is missing, not a list of non-negative integers, or of
    more elements (or bytes) than an int64 counts."""
    where = f"nominal checkpoint '{path}'"
    try:
        shapes = json.loads(text)
    except ValueError as e:
        raise _C.InvalidArgument(f"{where}: property '{NOMINAL_PROPERTY}' is not JSON ({e})") from None
    if not isinstance(shapes, dict):
        raise _C.InvalidArgument(f"{where}: property '{NOMINAL_PROPERTY}' is not a JSON object")
    out = {}
    for name, value in parameters.items():
        dtype = _from_native(value).dtype
        shape = shapes.get(name)
        if shape is None:
            raise _C.InvalidArgument(f"{where}: no shape recorded for parameter '{name}'")
        if (not isinstance(shape, list) or any(type(d) is not int or d < 0 for d in shape)
                or int(np.prod(shape, dtype=object)) * dtype.itemsize >= 2**63):
            raise _C.InvalidArgument(f"{where}: parameter '{name}' has shape {shape!r}, not a list of "
                                     "non-negative integers whose product fits in an int64")
        out[name] = (shape, dtype)
    return out


class Parameter:
    """A parameter of a CheckpointState: its name, value (`data`, settable), gradient (`grad`:
    None for a frozen parameter or when no Module trains the state, else the accumulated gradient,
    zeros before the first training step) and whether it is trained (`requires_grad`)."""

    def __init__(self, name: str, state: "CheckpointState") -> None:
        self._name = name
        self._state = state

    @property
    def name(self) -> str:
        return self._name

    @property
    def data(self) -> np.ndarray:
        """A copy of the value."""
        return self._state.parameters._array(self._name)

    @data.setter
    def data(self, value: np.ndarray) -> None:
        self._state.parameters[self._name] = value

    @property
    def requires_grad(self) -> bool:
        module = self._state._module()
        if module is not None:
            return self._name in module._trainable
        return self._name not in self._state._frozen and self._name not in self._state._statistics()

    @property
    def grad(self) -> np.ndarray | None:
        module = self._state._module()
        if module is None or not self.requires_grad:
            return None
        gradients = module._module.gradients()
        if self._name in gradients:
            return np.array(_from_native(gradients[self._name]))
        return np.zeros_like(self.data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self.data
        return data if dtype is None else data.astype(dtype)

    def __repr__(self) -> str:
        return f"Parameter(name={self._name}, requires_grad={self.requires_grad})"


class Parameters:
    """The parameters of a CheckpointState by name, as onnxruntime's mapping: `state.parameters[name]`
    is a Parameter, assigning an array replaces the value (same shape and element type), and
    iterating yields (name, Parameter) pairs."""

    def __init__(self, state: "CheckpointState") -> None:
        self._state = state

    def _names(self) -> list[str]:
        return list(self._state._state.parameters().keys())

    def _array(self, name: str) -> np.ndarray:
        if name not in self:
            raise KeyError(f"Parameter {name} not found.")
        if name in self._state._unloaded:
            raise RuntimeError(f"Please load the parameter states first: parameter '{name}' comes from a nominal "
                               "checkpoint and holds no value yet (Module.copy_buffer_to_parameters loads it)")
        return np.array(_from_native(self._state._state.parameters()[name]))

    def __getitem__(self, name: str) -> Parameter:
        self._array(name)  # raises for an unknown or not yet loaded parameter
        return Parameter(name, self._state)

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        if name not in self:
            raise KeyError(f"Parameter {name} not found.")
        if self._state._unloaded:
            raise _not_loaded(f"Please load all the parameter states first before setting parameter '{name}'",
                              self._state)
        if isinstance(value, Parameter):
            value = value.data
        self._state._state.set_tensor(name, _to_native(np.ascontiguousarray(value), None))

    def __contains__(self, name: object) -> bool:
        return name in self._state._state.parameters()

    def __iter__(self) -> Iterator[tuple[str, Parameter]]:
        for name in self._names():
            yield name, Parameter(name, self._state)

    def __len__(self) -> int:
        return len(self._names())

    def keys(self) -> list[str]:
        return self._names()

    def values(self) -> list[Parameter]:
        return [p for _, p in self]

    def items(self) -> list[tuple[str, Parameter]]:
        return list(self)

    def __repr__(self) -> str:
        return repr(self._names())


class Properties:
    """User properties of a CheckpointState by name: int, float (kept as float32, as onnxruntime)
    or str values, whose types survive save and load. Iterating yields (name, value) pairs."""

    def __init__(self, state: "CheckpointState") -> None:
        self._state = state

    def _raw(self) -> dict[str, str]:
        return dict(self._state._state.properties())

    def _names(self) -> list[str]:
        return [n for n in self._raw() if not n.startswith(_RESERVED)]

    def __getitem__(self, name: str) -> int | float | str:
        raw = self._raw()
        if name.startswith(_RESERVED) or name not in raw:
            raise KeyError(f"Property {name} not found.")
        kind = raw.get(_TYPE_PREFIX + name, "str")
        if kind == "int":
            return int(raw[name])
        if kind == "float":
            return float(np.float32(raw[name]))
        return raw[name]

    def __setitem__(self, name: str, value: int | float | str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a property name must be a non-empty str, got {name!r}")
        if name.startswith(_RESERVED):
            raise ValueError(f"property '{name}': names starting with '{_RESERVED}' are reserved for graft")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, str, np.integer, np.floating)):
            raise TypeError(f"property '{name}': values are int, float or str, got {type(value).__name__}")
        if isinstance(value, (int, np.integer)):
            kind, text = "int", str(int(value))
        elif isinstance(value, (float, np.floating)):
            kind, text = "float", repr(float(np.float32(value)))
        else:
            kind, text = "str", value
        self._state._state.add_property(_TYPE_PREFIX + name, kind)
        self._state._state.add_property(name, text)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not name.startswith(_RESERVED) and name in self._raw()

    def __iter__(self) -> Iterator[tuple[str, int | float | str]]:
        for name in self._names():
            yield name, self[name]

    def __len__(self) -> int:
        return len(self._names())

    def keys(self) -> list[str]:
        return self._names()

    def values(self) -> list[int | float | str]:
        return [v for _, v in self]

    def items(self) -> list[tuple[str, int | float | str]]:
        return list(self)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Properties):
            other = dict(other.items())
        return isinstance(other, dict) and dict(self.items()) == other

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class CheckpointState:
    """Parameters and optimizer state by name, plus the step and user properties. A saved
    checkpoint also holds graft's default random generator (what unseeded Dropout draws from),
    which loading restores, so a resumed run draws the masks an uninterrupted one would.

    A state loaded from a nominal checkpoint knows its parameters' names, types and shapes but
    holds no values: a Module and Optimizer build on it, but reading a parameter, training,
    evaluating or stepping raises until Module.copy_buffer_to_parameters has loaded them all.
    (graft keeps zero-filled tensors meanwhile.)"""

    def __init__(self, tensors: dict[str, np.ndarray] | Any, step: int = 0, properties: dict | None = None) -> None:
        if isinstance(tensors, _C.CheckpointState):
            native = tensors
        else:
            native = _C.CheckpointState({k: _to_native(np.asarray(v), None) for k, v in tensors.items()}, int(step),
                                        {})
        self._adopt(native, set())
        for name, value in (properties or {}).items():
            self.properties[name] = value

    def _adopt(self, native: Any, unloaded: set[str]) -> None:
        self._state = native
        self._unloaded = unloaded
        frozen = dict(native.properties()).get(FROZEN_PROPERTY, "")
        self._frozen = set(frozen.split("\n")) - {""}
        self._module_ref: Any = None
        self._parameters = Parameters(self)
        self._properties = Properties(self)

    def _module(self) -> "Module | None":
        return self._module_ref() if self._module_ref is not None else None

    def _statistics(self) -> set[str]:
        module = self._module()
        return set(module._statistics) if module is not None else set()

    @classmethod
    def load_checkpoint(cls, checkpoint_uri: str | os.PathLike) -> "CheckpointState":
        """Loads a checkpoint, complete or nominal, all or nothing: a file refused (with
        graft.InvalidArgument naming it and the tensor or property at fault) leaves graft's
        random generator, which a checkpoint restores, as it was."""
        path = os.fspath(checkpoint_uri)
        generator = _C.get_rng_state()
        native = _C.CheckpointState.load(path)
        properties = dict(native.properties())
        state = cls.__new__(cls)
        if NOMINAL_PROPERTY not in properties:
            state._adopt(native, set())
            return state
        try:
            shapes = _nominal_shapes(path, properties.pop(NOMINAL_PROPERTY), native.parameters())
            tensors = {name: _to_native(np.zeros(shape, dtype), None) for name, (shape, dtype) in shapes.items()}
            state._adopt(_C.CheckpointState(tensors, native.step, properties), set(tensors))
        except BaseException:
            _C.set_rng_state(generator)
            raise
        return state

    @classmethod
    def save_checkpoint(cls, state: "CheckpointState", checkpoint_uri: str | os.PathLike,
                        include_optimizer_state: bool = False) -> None:
        """Writes the checkpoint atomically: the parameters and properties, and with
        include_optimizer_state also the optimizer state, step and learning rate (what resuming
        needs), as onnxruntime does. Launched with several ranks, rank 0 writes and every rank
        returns once the file is complete, or raises rank 0's error, so all ranks call it."""
        if state._unloaded:
            raise _not_loaded("Please load all the parameter states first before saving the checkpoint", state)
        state._state.save(os.fspath(checkpoint_uri), include_optimizer_state)

    @property
    def parameters(self) -> Parameters:
        return self._parameters

    @property
    def properties(self) -> Properties:
        return self._properties

    @property
    def tensors(self) -> dict[str, np.ndarray]:
        """Parameters and optimizer state by name (a snapshot: assign to change them)."""
        return {**_arrays(self._state.parameters()), **_arrays(self._state.optimizer_state())}

    @tensors.setter
    def tensors(self, values: dict[str, np.ndarray]) -> None:
        """Replaces the named tensors (a name the state lacks adds a parameter). Every value is
        checked against the tensor it replaces before any is written: a refused assignment
        leaves the state as it was."""
        held = self.tensors
        arrays = {name: np.ascontiguousarray(value) for name, value in values.items()}
        for name, value in arrays.items():
            if name in held and (held[name].shape != value.shape or held[name].dtype != value.dtype):
                raise ValueError(f"tensor '{name}' is {held[name].dtype} {list(held[name].shape)}, the new value is "
                                 f"{value.dtype} {list(value.shape)}")
        for name, value in arrays.items():
            self._state.set_tensor(name, _to_native(value, None))

    @property
    def optimizer_state(self) -> dict[str, np.ndarray]:
        return _arrays(self._state.optimizer_state())

    @property
    def step(self) -> int:
        return self._state.step

    def add_property(self, name: str, value: int | float | str) -> None:
        self.properties[name] = value


class _ParameterBuffer(OrtValue):
    """get_contiguous_parameters' result. onnxruntime returns its C-level OrtValue there, whose
    device_name() is capitalized ("Cpu") where the Python OrtValue's is lower case; this keeps
    that spelling."""

    def device_name(self) -> str:
        return "Cpu"


class Module:
    """Runs the training model (gradients accumulate until the optimizer steps) or, in eval mode,
    the eval model, with the parameters held by `state`.

    device: "cpu" ("cpu:0"): graft's training API runs on the host. session_options (a
    graft.SessionOptions) sets how the training and eval models run (threads, execution mode,
    optimization level, ...), and the Optimizer's model runs with the same; options that rewrite
    a model before it loads (free dimension overrides, added initializers) do not apply here.
    A custom-op library registered in it (a graft kernel library: register_custom_ops_library
    loads it and its kernels register process-wide) serves the training models' ops too.

    Launched with `mpirun -np N` (N > 1) the module trains data-parallel unless
    data_parallel=False: it takes rank 0's parameters, and the training model's gradients are
    averaged across ranks by com.graft.AllReduce nodes (buckets of about bucket_mb MiB) inside
    the model, so each rank feeds its own share of the batch and every rank's optimizer applies
    the same update.

    BatchNormalization running statistics (inputs of the training model whose new values it
    outputs as "<statistic>.new") live in `state` beside the parameters: each training call
    replaces them with the new values (averaged across ranks when data parallel), and the eval
    model normalizes with them.

    Threads: the calls of the Modules and Optimizers over one CheckpointState, and the state's
    own, are serialized; a call from a second thread waits for the one running (without holding
    the GIL). A train call, optimizer step and lazy_reset_grad are three calls, which threads
    that each run them interleave unless they hold a lock of their own around them."""

    training: bool

    def __init__(self, train_model_uri: str | os.PathLike, state: CheckpointState,
                 eval_model_uri: str | os.PathLike | None = None, device: str = "cpu", session_options: Any = None,
                 *, data_parallel: bool | None = None, bucket_mb: float = 25.0) -> None:
        if device.split(":")[0].lower() != "cpu":
            raise ValueError(f"Module(device={device!r}): graft's training API runs on the CPU ('cpu')")
        self._state = state
        self._session_options = session_options._to_native() if session_options is not None else None
        self._module = _C.Module(state._state, os.fspath(train_model_uri),
                                 os.fspath(eval_model_uri) if eval_model_uri is not None else "", data_parallel,
                                 bucket_mb, self._session_options)
        self._trainable = list(self._module.parameter_names())
        self._frozen = list(self._module.frozen_parameter_names())
        self._statistics = [n for n in state._state.parameters()
                            if n not in self._trainable and n not in self._frozen]
        state._module_ref = weakref.ref(self)
        self.training = True

    def _check_loaded(self) -> None:
        if self._state._unloaded:
            raise _not_loaded("Please load the model parameters first.", self._state)

    def train(self, mode: bool = True) -> "Module":
        self.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def lazy_reset_grad(self) -> None:
        """The next training call replaces the accumulated gradients instead of adding to them."""
        self._module.lazy_reset_grad()

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The accumulated gradients by parameter name."""
        return _arrays(self._module.gradients())

    @property
    def data_parallel(self) -> bool:
        return self._module.data_parallel

    def parameters(self) -> list[str]:
        """The trained parameters' names."""
        return list(self._trainable)

    def input_names(self) -> list[str]:
        """The inputs a call feeds, in order, of the training or eval model (by mode)."""
        return list(self._module.input_names(self.training))

    def output_names(self) -> list[str]:
        """What a call returns, in order, of the training or eval model (by mode)."""
        return list(self._module.output_names(self.training))

    def __call__(self, *user_inputs: Any) -> Any:
        """Feeds `user_inputs` (NumPy arrays or OrtValues) in input_names() order; returns the
        outputs (the loss first), one value alone. They are NumPy arrays when any input is an
        array, else OrtValues, as in onnxruntime."""
        self._check_loaded()
        names = self.input_names()
        if len(user_inputs) != len(names):
            raise ValueError(f"the {'training' if self.training else 'eval'} model takes {len(names)} inputs "
                             f"({', '.join(names)}), got {len(user_inputs)}")
        feeds = {n: _to_native(v.numpy() if isinstance(v, OrtValue) else v, None) for n, v in zip(names, user_inputs)}
        outs = [_from_native(v) for v in (self._module.train_step(feeds) if self.training
                                          else self._module.eval_step(feeds))]
        if not any(isinstance(v, np.ndarray) for v in user_inputs):
            outs = [OrtValue.ortvalue_from_numpy(np.asarray(v)) for v in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _parameter_names(self, trainable_only: bool) -> list[str]:
        return self._trainable if trainable_only else self._trainable + self._frozen

    def get_parameters_size(self, trainable_only: bool = True) -> int:
        """The number of elements of the trained parameters (and with trainable_only=False of
        the frozen ones too)."""
        tensors = self._state._state.parameters()
        return int(sum(_from_native(tensors[n]).size for n in self._parameter_names(trainable_only)))

    def get_contiguous_parameters(self, trainable_only: bool = False) -> OrtValue:
        """The parameters, trained ones first then frozen ones (trainable_only=False), each
        flattened, in one float32 OrtValue."""
        self._check_loaded()
        tensors = self._state._state.parameters()
        arrays = [np.asarray(_from_native(tensors[n])) for n in self._parameter_names(trainable_only)]
        for name, a in zip(self._parameter_names(trainable_only), arrays):
            if a.dtype != np.float32:
                raise TypeError(f"get_contiguous_parameters: parameter '{name}' is {a.dtype}, not float32")
        buffer = np.concatenate([a.reshape(-1) for a in arrays]) if arrays else np.zeros(0, np.float32)
        return _ParameterBuffer(OrtValue.ortvalue_from_numpy(buffer)._ortvalue, buffer)

    def copy_buffer_to_parameters(self, buffer: OrtValue | np.ndarray, trainable_only: bool = True) -> None:
        """Sets the parameters from a buffer laid out as get_contiguous_parameters(trainable_only)
        lays them out. Loads the values of a nominal checkpoint's parameters. A buffer of the
        wrong size or type changes nothing."""
        data = buffer.numpy() if isinstance(buffer, OrtValue) else np.asarray(buffer)
        names = self._parameter_names(trainable_only)
        expected = self.get_parameters_size(trainable_only)
        if data.dtype != np.float32 or data.ndim != 1 or data.size != expected:
            raise ValueError(f"copy_buffer_to_parameters: the buffer must be a 1-D float32 array of {expected} "
                             f"elements ({len(names)} {'trainable ' if trainable_only else ''}parameters), "
                             f"got {data.dtype} of shape {data.shape}")
        tensors = self._state._state.parameters()
        offset, pieces = 0, {}
        for name in names:
            shape = _from_native(tensors[name]).shape
            size = int(np.prod(shape))
            pieces[name] = np.ascontiguousarray(data[offset:offset + size].reshape(shape))
            offset += size
        for name, value in pieces.items():
            self._state._state.set_tensor(name, _to_native(value, None))
            self._state._unloaded.discard(name)

    def export_model_for_inferencing(self, inference_model_uri: str | os.PathLike,
                                     graph_output_names: Sequence[str] = ()) -> None:
        """Writes the eval model with the current parameters, pruned to `graph_output_names`
        (default: the outputs of the model generate_artifacts was given)."""
        self._check_loaded()
        self._module.export_model_for_inferencing(os.fspath(inference_model_uri), list(graph_output_names))


class Optimizer:
    """Applies the module's accumulated gradients with the optimizer model. The learning rate is
    the checkpoint's when it holds one (saved with its optimizer state), else 1e-3."""

    def __init__(self, optimizer_uri: str | os.PathLike, module: Module) -> None:
        self._module = module
        self._optimizer = _C.Optimizer(module._module, os.fspath(optimizer_uri),
                                       session_options=module._session_options)

    def set_learning_rate(self, learning_rate: float) -> None:
        self._optimizer.set_learning_rate(float(learning_rate))

    def get_learning_rate(self) -> float:
        return self._optimizer.learning_rate

    @property
    def learning_rate(self) -> float:
        return self._optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._optimizer.set_learning_rate(float(value))

    def step(self) -> None:
        self._module._check_loaded()
        self._optimizer.step()


class LinearLRScheduler:
    """onnxruntime's linear schedule: the learning rate rises linearly from 0 to `initial_lr` over
    `warmup_step_count` optimizer steps, then falls linearly to 0 at `total_step_count`.
    Construction sets the rate for the state's current step (0 at step 0 with a warmup); call
    `step()` after each `Optimizer.step()`. These are the documented meanings of the arguments;
    onnxruntime-training 1.19.2's Python binding hands them to its C++ scheduler swapped (its
    schedule warms up over total_step_count steps and ends at warmup_step_count)."""

    def __init__(self, optimizer: Optimizer, warmup_step_count: int, total_step_count: int,
                 initial_lr: float) -> None:
        self._optimizer = optimizer
        self._scheduler = _C.LinearLRScheduler(optimizer._optimizer, int(warmup_step_count), int(total_step_count),
                                               float(initial_lr))

    @property
    def warmup_step_count(self) -> int:
        return self._scheduler.warmup_step_count

    @property
    def total_step_count(self) -> int:
        return self._scheduler.total_step_count

    @property
    def initial_lr(self) -> float:
        return self._scheduler.initial_lr

    def factor(self, step: int) -> float:
        """The multiplier of initial_lr after `step` optimizer steps."""
        return self._scheduler.factor(int(step))

    def step(self) -> None:
        self._scheduler.step()
