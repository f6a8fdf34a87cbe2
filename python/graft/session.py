"""InferenceSession with the onnxruntime.InferenceSession interface."""

from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from . import _C, _types
from .iobinding import IOBinding, OrtValue, run_with_ort_values


class GraphOptimizationLevel:
    """The onnxruntime names for graph optimization levels."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_ALL = 99


class ExecutionMode:
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class SessionOptions:
    """Options for an InferenceSession (the onnxruntime attribute names)."""

    def __init__(self) -> None:
        self.intra_op_num_threads = 0
        self.inter_op_num_threads = 0
        self.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.optimized_model_filepath = ""
        self.enable_profiling = False
        self.profile_file_prefix = "graft_profile"
        # The first run with given input shapes records the intermediate tensors' lifetimes;
        # later runs with those shapes place them in one planned arena per allocator.
        self.enable_mem_pattern = True
        self.execution_mode = ExecutionMode.ORT_SEQUENTIAL
        self.log_severity_level = 2
        self.log_verbosity_level = 0

    def _to_native(self) -> "_C.SessionOptions":
        native = _C.SessionOptions()
        native.intra_op_num_threads = int(self.intra_op_num_threads)
        native.inter_op_num_threads = int(self.inter_op_num_threads)
        native.execution_mode = int(self.execution_mode)
        native.graph_optimization_level = int(self.graph_optimization_level)
        native.optimized_model_filepath = str(self.optimized_model_filepath or "")
        native.enable_profiling = bool(self.enable_profiling)
        native.profile_file_prefix = str(self.profile_file_prefix)
        native.enable_mem_pattern = bool(self.enable_mem_pattern)
        return native


class RunOptions:
    def __init__(self) -> None:
        self.log_severity_level = 2
        self.run_tag = ""
        self.terminate = False


class NodeArg:
    """Name, type and shape of a model input or output."""

    def __init__(self, info: dict) -> None:
        self.name: str = info["name"]
        self.type: str = info["type"]
        self.shape = info["shape"]

    def __repr__(self) -> str:
        return f"NodeArg(name='{self.name}', type='{self.type}', shape={self.shape})"


class ModelMetadata:
    def __init__(self, producer_name: str = "", graph_name: str = "", domain: str = "",
                 description: str = "", version: int = 0, custom_metadata_map: dict | None = None):
        self.producer_name = producer_name
        self.graph_name = graph_name
        self.domain = domain
        self.description = description
        self.version = version
        self.custom_metadata_map = custom_metadata_map or {}


def get_available_providers() -> list[str]:
    return list(_C.available_providers())


def _option_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, bool) else str(value)


def _session_providers(providers: Sequence[str | tuple] | None,
                       provider_options: Sequence[dict] | None = None) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The requested providers that are available, in order, and their options as strings
    (onnxruntime's forms: names, (name, options) tuples, or names with a parallel
    provider_options list). As onnxruntime, an unavailable one (CUDA without a GPU) is left out
    with a warning and the session runs on the others; none requested: the engine's defaults."""
    if providers is None:
        if provider_options:
            raise ValueError("'provider_options' needs 'providers' to say which provider each is for")
        return [], {}
    if isinstance(providers, (str, bytes)) or not isinstance(providers, Sequence):
        raise ValueError("'providers' should be a sequence.")
    if provider_options is not None:
        if len(providers) != len(provider_options):
            raise ValueError("'providers' and 'provider_options' should be the same length if both are given.")
        if not all(isinstance(p, str) for p in providers):
            raise ValueError("Only string values for 'providers' are supported if 'provider_options' is given.")
        if not all(isinstance(o, dict) for o in provider_options):
            raise ValueError("'provider_options' values must be dicts.")
        pairs = list(zip(providers, provider_options))
    else:
        pairs = []
        for p in providers:
            if isinstance(p, str):
                pairs.append((p, {}))
            elif isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], dict):
                pairs.append(p)
            else:
                raise ValueError("'providers' values must be either strings or (string, dict) tuples.")
    names: list[str] = []
    options: dict[str, dict[str, str]] = {}
    available = get_available_providers()
    for name, given in pairs:
        if name not in available:
            warnings.warn(f"Specified provider '{name}' is not in available provider names. "
                          f"Available providers: '{', '.join(available)}'", stacklevel=3)
        elif name in options:
            warnings.warn(f"Duplicate provider '{name}' encountered, ignoring.", stacklevel=3)
        else:
            names.append(name)
            options[name] = {str(k): _option_text(v) for k, v in given.items()}
    return names, options


def get_device() -> str:
    return "CPU"


def _to_native(value: Any, declared: str | None) -> Any:
    """Python value -> the tuple form graft._C takes."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and (declared or "").startswith(("seq", "optional(seq")):
        items = [_to_native(v, None) for v in value]
        code = items[0][0] if items else _elem_code(declared)
        native = ("seq", code, items)
        return ("opt", "seq", code, native) if declared.startswith("optional") else native
    if isinstance(value, dict):
        keys = np.array(list(value.keys()))
        values = np.array(list(value.values()))
        if declared and declared.startswith("map("):
            # "map(string,tensor(float))": convert to the declared key and value types.
            key_name, value_type = declared[4:-1].split(",", 1)
            keys = keys.astype(_types.numpy_dtype(_code_of_name(key_name)))
            values = values.astype(_types.numpy_dtype(_elem_code(value_type)))
        return ("map", _to_native(keys, None), _to_native(values, None))
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype.kind in ("U", "S"):
        arr = arr.astype(object)
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")  # np.ascontiguousarray would turn a 0-d array into 1-d
    native = (_types.code_of(arr.dtype), arr)
    if declared and declared.startswith("optional"):
        return ("opt", "tensor", native[0], native)
    return native


def _code_of_name(name: str) -> int:
    for code, known in _types.NAMES.items():
        if known == name:
            return code
    raise TypeError(f"unknown element type {name!r}")


def _elem_code(declared: str | None) -> int:
    """Element type code of a declared type such as "seq(tensor(float))"."""
    if not declared:
        return 1
    return _code_of_name(declared[declared.rfind("(") + 1: declared.find(")")])


def _from_native(value: Any) -> Any:
    """graft._C's tuple form -> NumPy arrays, lists, dicts or None."""
    if value is None:
        return None
    tag = value[0]
    if isinstance(tag, int):
        code, arr = value
        if code == _types.STRING:
            return arr
        want = _types.numpy_dtype(code)
        return arr if arr.dtype == want else arr.view(want)
    if tag == "seq":
        return [_from_native(v) for v in value[2]]
    if tag == "map":
        keys = _from_native(value[1])
        values = _from_native(value[2])
        return {k.item() if hasattr(k, "item") else k: v for k, v in zip(keys, values)}
    if tag == "opt":
        return _from_native(value[3])
    raise TypeError(f"unexpected value from the engine: {tag!r}")


class InferenceSession:
    """Loads an ONNX model and runs it; the onnxruntime.InferenceSession interface."""

    def __init__(self, path_or_bytes: str | bytes | os.PathLike, sess_options: SessionOptions | None = None,
                 providers: Sequence[str | tuple] | None = None, provider_options: Sequence[dict] | None = None,
                 **kwargs: Any) -> None:
        self._sess_options = sess_options or SessionOptions()
        names, self._provider_options = _session_providers(providers, provider_options)
        native_options = self._sess_options._to_native()
        native_options.provider_options = self._provider_options
        if isinstance(path_or_bytes, (bytes, bytearray)):
            self._model_path = None
            self._sess = _C.InferenceSession.from_bytes(bytes(path_or_bytes), native_options, names)
        elif isinstance(path_or_bytes, (str, os.PathLike)):
            self._model_path = os.fspath(path_or_bytes)
            self._sess = _C.InferenceSession.from_file(self._model_path, native_options, names)
        else:
            raise TypeError(f"InferenceSession expects a path or bytes, got {type(path_or_bytes).__name__}")
        self._inputs = [NodeArg(i) for i in self._sess.inputs()]
        self._outputs = [NodeArg(o) for o in self._sess.outputs()]
        self._overridable = [NodeArg(o) for o in self._sess.overridable_initializers()]
        self._declared = {a.name: a.type for a in self._inputs + self._overridable}

    def get_inputs(self) -> list[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        return list(self._outputs)

    def get_overridable_initializers(self) -> list[NodeArg]:
        return list(self._overridable)

    def get_providers(self) -> list[str]:
        return list(self._sess.providers())

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        """Per provider the session uses, the options it was given (as strings)."""
        return {p: dict(self._provider_options.get(p, {})) for p in self.get_providers()}

    def get_session_options(self) -> SessionOptions:
        return self._sess_options

    def get_modelmeta(self) -> ModelMetadata:
        return ModelMetadata()

    def end_profiling(self) -> str:
        return self._sess.end_profiling()

    def planned_peak_bytes(self) -> dict[str, int]:
        """Bytes of the arenas the latest run's memory pattern planned, per allocator name
        ("Cpu", "Cuda"): the peak of the intermediate tensors, outputs and inputs not included.
        Empty before the first run and with SessionOptions.enable_mem_pattern off."""
        return dict(self._sess.planned_peak_bytes())

    def io_binding(self) -> "IOBinding":
        return IOBinding(self)

    def run_with_iobinding(self, iobinding: "IOBinding", run_options: RunOptions | None = None) -> None:
        """Runs with the binding's inputs; its outputs are where the binding says (get_outputs)."""
        iobinding._run()

    def run_with_ort_values(self, output_names: Sequence[str] | None, input_dict_ort_values: dict[str, "OrtValue"],
                            run_options: RunOptions | None = None) -> list["OrtValue"]:
        """run() with OrtValues in and out; outputs made on a device stay there."""
        return run_with_ort_values(self, output_names, input_dict_ort_values)

    def run(self, output_names: Sequence[str] | None, input_feed: dict[str, Any],
            run_options: RunOptions | None = None) -> list[Any]:
        feeds = {name: _to_native(value, self._declared.get(name)) for name, value in input_feed.items()}
        outs = self._sess.run(list(output_names or []), feeds)
        return [_from_native(v) for v in outs]
