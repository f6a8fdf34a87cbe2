"""SessionOptions and RunOptions with onnxruntime's names, and the model edits some session
options ask for (initializers supplied by the user, external data held in memory, fixed values for
free dimensions), applied to the model before graft loads it."""

from __future__ import annotations

import ctypes
import enum
import os
from typing import Any, Callable, Sequence

import numpy as np

from . import _C


class GraphOptimizationLevel(enum.IntEnum):
    """The onnxruntime names for graph optimization levels."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


def _one_of(*allowed: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(repr(a) for a in allowed)}"

    return check


def _integer(minimum: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            ok = int(value) >= minimum
        except ValueError:
            ok = False
        return None if ok else f"must be an integer of at least {minimum}"

    return check


def _any(value: str) -> str | None:
    return None


_FLAG = _one_of("0", "1")

# Custom-op libraries loaded in this process, by absolute path (they stay loaded: their kernels
# are in graft's registry).
_LOADED_LIBRARIES: dict[str, ctypes.CDLL] = {}

# The configuration keys graft reads, each with what its value must be. Other keys are kept as
# they are, as onnxruntime keeps keys of providers and versions it does not know.
SESSION_CONFIG_KEYS: dict[str, Callable[[str], str | None]] = {
    "session.disable_prepacking": _FLAG,
    "session.use_env_allocators": _FLAG,
    "session.load_model_format": _one_of("ONNX", "ORT"),
    "session.save_model_format": _one_of("ONNX", "ORT"),
    "session.set_denormal_as_zero": _FLAG,
    "session.intra_op.allow_spinning": _FLAG,
    "session.inter_op.allow_spinning": _FLAG,
    "session.disable_cpu_ep_fallback": _FLAG,
    "session.record_ep_graph_assignment_info": _FLAG,
    "session.optimized_model_external_initializers_file_name": _any,
    "session.optimized_model_external_initializers_min_size_in_bytes": _integer(0),
    "session.dynamic_block_base": _integer(0),
    # graft's own: the most bytes the session may hold in one allocator (exec/memory_limit.h);
    # "0" or absent: 80% of physical memory.
    "session.memory_limit_bytes": _integer(0),
}

RUN_CONFIG_KEYS: dict[str, Callable[[str], str | None]] = {
    "memory.enable_memory_arena_shrinkage": _any,
    "run.disable_synchronize_execution_providers": _FLAG,
}


def _set_entry(entries: dict[str, str], known: dict[str, Callable[[str], str | None]], what: str, key: str,
               value: str) -> None:
    key, value = str(key), str(value)
    if not key:
        raise RuntimeError(f"{what} config key must not be empty")
    check = known.get(key)
    problem = check(value) if check else None
    if problem:
        raise RuntimeError(f"{what} config entry '{key}': value '{value}' {problem}")
    entries[key] = value


def _get_entry(entries: dict[str, str], owner: str, key: str) -> str:
    if key not in entries:
        raise RuntimeError(f"{owner} does not have configuration with key: {key}")
    return entries[key]


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
        self.enable_cpu_mem_arena = True
        self.execution_mode = ExecutionMode.ORT_SEQUENTIAL
        self.execution_order = ExecutionOrder.DEFAULT
        self.log_severity_level = -1  # -1: the process default (set_default_logger_severity)
        self.log_verbosity_level = 0
        self.logid = ""
        self.use_deterministic_compute = False
        self._config: dict[str, str] = {}
        self._initializers: dict[str, Any] = {}
        self._external_files: dict[str, bytes] = {}
        self._dims_by_name: dict[str, int] = {}
        self._dims_by_denotation: dict[str, int] = {}
        self._custom_op_libraries: list[str] = []

    def add_session_config_entry(self, key: str, value: str) -> None:
        """Sets a configuration entry; a known key with an invalid value raises RuntimeError."""
        _set_entry(self._config, SESSION_CONFIG_KEYS, "session", key, value)

    def get_session_config_entry(self, key: str) -> str:
        return _get_entry(self._config, "SessionOptions", key)

    def add_initializer(self, name: str, ortvalue: Any) -> None:
        """Replaces the model's initializer `name` with this OrtValue's tensor in every session
        made with these options."""
        if not hasattr(ortvalue, "numpy") or not ortvalue.is_tensor():
            raise TypeError(f"add_initializer('{name}'): expected an OrtValue holding a tensor")
        self._initializers[str(name)] = ortvalue

    def add_external_initializers(self, names: Sequence[str], ortvalues: Sequence[Any]) -> None:
        """Supplies initializers whose data the model keeps outside it, by name."""
        if len(names) != len(ortvalues):
            raise ValueError("add_external_initializers: names and values differ in length")
        for name, value in zip(names, ortvalues):
            self.add_initializer(name, value)

    def add_external_initializers_from_files_in_memory(self, file_names: Sequence[str], buffers: Sequence[Any],
                                                       lengths: Sequence[int]) -> None:
        """Supplies the contents of external data files the model names, instead of reading them
        from disk."""
        if not len(file_names) == len(buffers) == len(lengths):
            raise ValueError("add_external_initializers_from_files_in_memory: the three lists differ in length")
        for name, data, length in zip(file_names, buffers, lengths):
            content = bytes(memoryview(data).cast("B"))
            if int(length) > len(content):
                raise ValueError(f"external file '{name}': length {length} exceeds its {len(content)} bytes")
            self._external_files[os.path.normpath(str(name))] = content[: int(length)]

    def add_free_dimension_override_by_name(self, dim_name: str, dim_value: int) -> None:
        self._dims_by_name[str(dim_name)] = _dimension(dim_name, dim_value)

    def add_free_dimension_override_by_denotation(self, dim_denotation: str, dim_value: int) -> None:
        self._dims_by_denotation[str(dim_denotation)] = _dimension(dim_denotation, dim_value)

    def register_custom_ops_library(self, library_path: str) -> None:
        """Loads a shared library whose kernels register themselves with graft's CPU provider
        when it loads (GRAFT_CPU_KERNELS in exec/kernel.h; examples/custom_op); sessions then
        resolve its ops. The library is built against graft's headers without linking libgraft:
        its graft symbols resolve to those of the graft module Python loaded. A library loads
        once per process and its kernels stay registered."""
        path = os.path.abspath(os.fspath(library_path))
        if not os.path.isfile(path):
            raise RuntimeError(f"register_custom_ops_library: no library at '{path}'")
        if path not in _LOADED_LIBRARIES:
            # The extension's kernel API (GRAFT_API symbols) becomes visible to libraries loaded
            # after it; Python loaded it with its symbols private to it.
            ctypes.CDLL(_C.__file__, mode=ctypes.RTLD_GLOBAL | os.RTLD_NOLOAD)
            try:
                _LOADED_LIBRARIES[path] = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError as e:
                raise RuntimeError(f"register_custom_ops_library: cannot load '{path}': {e}") from None
        if path not in self._custom_op_libraries:
            self._custom_op_libraries.append(path)

    def _edits_model(self) -> bool:
        return bool(self._initializers or self._external_files or self._dims_by_name or self._dims_by_denotation)

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
        native.memory_limit_bytes = int(self._config.get("session.memory_limit_bytes", "0"))
        return native


def _dimension(name: str, value: int) -> int:
    value = int(value)
    if value <= 0:
        raise RuntimeError(f"free dimension override '{name}': the value must be positive, got {value}")
    return value


class RunOptions:
    """Settings of one run. `terminate = True` from another thread stops a run in progress
    before its next node (it raises graft.Fail); runs started while it is set fail at once.
    `only_execute_path_to_fetches = True` runs only the nodes the requested outputs depend on
    (in the sequential execution mode)."""

    def __init__(self) -> None:
        self.log_severity_level = -1  # -1: the session's
        self.log_verbosity_level = 0
        self.logid = ""
        self.run_tag = ""
        self.only_execute_path_to_fetches = False
        self.synchronize_execution_providers = True
        self._flag = _C.TerminateFlag()
        self._config: dict[str, str] = {}
        self._adapters: list[Any] = []

    @property
    def terminate(self) -> bool:
        return self._flag.value

    @terminate.setter
    def terminate(self, value: bool) -> None:
        self._flag.value = bool(value)

    def add_run_config_entry(self, key: str, value: str) -> None:
        _set_entry(self._config, RUN_CONFIG_KEYS, "run", key, value)

    def get_run_config_entry(self, key: str) -> str:
        return _get_entry(self._config, "RunOptions", key)

    def add_active_adapter(self, adapter: Any) -> None:
        """Runs with a LoraAdapter's parameters fed to the model inputs they name."""
        self._adapters.append(adapter)


def edit_model(model: Any, options: SessionOptions) -> None:
    """Applies `options`' model edits to an onnx.ModelProto in place: initializers the user
    supplied, external data from files held in memory, and free dimension overrides. External
    data in no such file stays external: graft's loader reads it, with its checks on where a
    model may read from. Raises ValueError naming an initializer the model lacks or a range
    outside the bytes given."""
    from onnx import external_data_helper, numpy_helper

    graph = model.graph
    by_name = {t.name: t for t in graph.initializer}
    for name, ortvalue in options._initializers.items():
        if name not in by_name:
            raise ValueError(f"add_initializer: the model has no initializer '{name}'")
        replacement = numpy_helper.from_array(np.asarray(ortvalue.numpy()), name)
        by_name[name].CopyFrom(replacement)
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = external_data_helper.ExternalDataInfo(tensor)
        content = options._external_files.get(os.path.normpath(info.location))
        if content is None:
            continue
        offset = int(info.offset or 0)
        length = int(info.length) if info.length else len(content) - offset
        if offset < 0 or length < 0 or offset + length > len(content):
            raise ValueError(f"initializer '{tensor.name}': its data at {offset}+{length} lies outside the "
                             f"{len(content)} bytes given for '{info.location}'")
        tensor.raw_data = content[offset: offset + length]
        tensor.data_location = 0
        del tensor.external_data[:]
    if options._dims_by_name or options._dims_by_denotation:
        for value in list(graph.input) + list(graph.output) + list(graph.value_info):
            if not value.type.HasField("tensor_type"):
                continue
            for dim in value.type.tensor_type.shape.dim:
                fixed = options._dims_by_name.get(dim.dim_param) if dim.HasField("dim_param") else None
                if fixed is None and dim.denotation:
                    fixed = options._dims_by_denotation.get(dim.denotation)
                if fixed is not None:
                    dim.dim_value = fixed


def options_from_model(model_bytes_or_path: Any, options: SessionOptions) -> SessionOptions:
    """onnxruntime's ORT_LOAD_CONFIG_FROM_MODEL=1: the session options in the model's "ort_config"
    metadata (JSON: {"session_options": {...}}) override `options`' (a copy is returned). The keys
    onnxruntime reads are read (intra_op_num_threads, inter_op_num_threads, execution_mode,
    graph_optimization_level, enable_profiling; integers); others are ignored with a warning. A
    value out of range or JSON that does not parse raises RuntimeError naming it."""
    import copy
    import json
    import warnings

    import onnx

    if isinstance(model_bytes_or_path, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model_bytes_or_path))
    else:
        model = onnx.load(model_bytes_or_path, load_external_data=False)
    config = next((p.value for p in model.metadata_props if p.key == "ort_config"), None)
    if config is None:
        return options
    try:
        settings = json.loads(config)
    except ValueError as e:
        raise RuntimeError(f"the JSON in the model's ort_config metadata does not parse: {e}") from None
    settings = settings.get("session_options", {}) if isinstance(settings, dict) else {}
    result = copy.copy(options)
    checks: dict[str, Callable[[int], bool]] = {
        "intra_op_num_threads": lambda v: v >= 0,
        "inter_op_num_threads": lambda v: v >= 0,
        "execution_mode": lambda v: v in (0, 1),
        "graph_optimization_level": lambda v: v in {int(level) for level in GraphOptimizationLevel},
        "enable_profiling": lambda v: v in (0, 1),
    }
    for key, value in settings.items():
        if key not in checks:
            warnings.warn(f"ort_config: session option '{key}' is not one graft reads from a model; ignored",
                          stacklevel=3)
            continue
        if not isinstance(value, int) or not checks[key](int(value)):
            raise RuntimeError(f"ort_config: unsupported value {value!r} for session option '{key}'")
        if key == "graph_optimization_level":
            result.graph_optimization_level = GraphOptimizationLevel(int(value))
        elif key == "execution_mode":
            result.execution_mode = ExecutionMode(int(value))
        elif key == "enable_profiling":
            result.enable_profiling = bool(value)
        else:
            setattr(result, key, int(value))
    return result
