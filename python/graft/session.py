"""InferenceSession with the onnxruntime.InferenceSession interface."""

from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from . import _C, _types
from .devices import memory_info_of
from .iobinding import IOBinding, OrtValue, OrtValueVector, run_with_ort_values
from .sparse import SparseTensor
from .session_options import (ExecutionMode, ExecutionOrder, GraphOptimizationLevel, RunOptions, SessionOptions,
                              edit_model, options_from_model)


class NodeArg:
    """Name, type and shape of a model input or output."""

    def __init__(self, info: dict) -> None:
        self.name: str = info["name"]
        self.type: str = info["type"]
        self.shape = info["shape"]

    def __repr__(self) -> str:
        return f"NodeArg(name='{self.name}', type='{self.type}', shape={self.shape})"


class ModelMetadata:
    """What the model says about itself (onnxruntime's ModelMetadata)."""

    def __init__(self, producer_name: str = "", graph_name: str = "", domain: str = "", description: str = "",
                 version: int = 0, custom_metadata_map: dict | None = None, graph_description: str = "") -> None:
        self.producer_name = producer_name
        self.graph_name = graph_name
        self.graph_description = graph_description
        self.domain = domain
        self.description = description
        self.version = version
        self.custom_metadata_map = custom_metadata_map or {}


def get_available_providers() -> list[str]:
    return list(_C.available_providers())


def _option_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, bool) else str(value)


def check_and_normalize_provider_args(providers: Sequence[str | tuple] | None, provider_options: Sequence[dict] | None,
                                      available_provider_names: Sequence[str]) -> tuple[list[str], list[dict[str, str]]]:
    """onnxruntime's forms of naming providers (names, (name, options) tuples, or names with a
    parallel provider_options list) -> the names in order and their options as strings. A name
    not available warns and stays; a repeated one warns and is dropped; malformed arguments raise
    ValueError."""
    if providers is None:
        if provider_options:
            raise ValueError("'provider_options' needs 'providers' to say which provider each is for")
        return [], []
    if isinstance(providers, (str, bytes)) or not isinstance(providers, Sequence):
        raise ValueError("'providers' should be a sequence.")
    if provider_options is not None:
        if isinstance(provider_options, (str, bytes)) or not isinstance(provider_options, Sequence):
            raise ValueError("'provider_options' should be a sequence.")
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
    options: dict[str, dict[str, str]] = {}
    for name, given in pairs:
        if name not in available_provider_names:
            warnings.warn(f"Specified provider '{name}' is not in available provider names. "
                          f"Available providers: '{', '.join(available_provider_names)}'", stacklevel=3)
        if name in options:
            warnings.warn(f"Duplicate provider '{name}' encountered, ignoring.", stacklevel=3)
            continue
        options[name] = {str(k): _option_text(v) for k, v in given.items()}
    return list(options), list(options.values())


def _session_providers(providers: Sequence[str | tuple] | None,
                       provider_options: Sequence[dict] | None = None) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The requested providers that this machine has, in order, and their options. A name graft
    does not know raises RuntimeError; one it knows but this machine lacks (CUDA without a GPU) is
    left out with a warning, as onnxruntime does, and the session runs on the others; none
    requested: the engine's defaults."""
    available = get_available_providers()
    names, options = check_and_normalize_provider_args(providers, provider_options, available)
    unknown = [n for n in names if n not in get_all_providers()]
    if unknown:
        raise RuntimeError(f"Unknown Provider Type: {unknown[0]} (graft knows {', '.join(get_all_providers())})")
    kept = {n: o for n, o in zip(names, options) if n in available}
    return list(kept), kept


# Providers graft can be built with, in default preference order: the CPU provider is last.
_ALL_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def get_all_providers() -> list[str]:
    """Every provider graft knows (built into this copy or not), CPU last."""
    others = [p for p in get_available_providers() if p not in _ALL_PROVIDERS]
    return [*_ALL_PROVIDERS[:-1], *others, _ALL_PROVIDERS[-1]]


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
    if isinstance(value, np.ndarray):
        arr = value
    else:
        # A list or scalar takes the declared element type, as onnxruntime converts it.
        code = _elem_code(declared) if declared and declared.startswith("tensor(") else None
        arr = np.asarray(value, dtype=None if code in (None, _types.STRING) else _types.numpy_dtype(code))
    if arr.dtype.type is np.void:  # raw bytes (not ml_dtypes' types, also of kind "V"): strings
        arr = np.array([bytes(x).rstrip(b"\0").decode() for x in arr.reshape(-1)], dtype=object).reshape(arr.shape)
    elif arr.dtype.kind in ("U", "S"):
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
        # Python numbers, as onnxruntime returns them (ZipMap's probabilities).
        return {k.item() if hasattr(k, "item") else k: v.item() if isinstance(v, np.generic) else v
                for k, v in zip(keys, values)}
    if tag == "opt":
        return _from_native(value[3])
    raise TypeError(f"unexpected value from the engine: {tag!r}")


class InferenceSession:
    """Loads an ONNX model and runs it; the onnxruntime.InferenceSession interface."""

    def __init__(self, path_or_bytes: str | bytes | os.PathLike, sess_options: SessionOptions | None = None,
                 providers: Sequence[str | tuple] | None = None, provider_options: Sequence[dict] | None = None,
                 **kwargs: Any) -> None:
        if isinstance(path_or_bytes, (bytes, bytearray)):
            self._model_path, self._model_bytes = None, bytes(path_or_bytes)
        elif isinstance(path_or_bytes, (str, os.PathLike)):
            self._model_path, self._model_bytes = os.fspath(path_or_bytes), None
        else:
            raise TypeError(f"InferenceSession expects a path or bytes, got {type(path_or_bytes).__name__}")
        self._sess_options = sess_options or SessionOptions()
        if os.environ.get("ORT_LOAD_CONFIG_FROM_MODEL") == "1":
            self._sess_options = options_from_model(self._model_bytes or self._model_path, self._sess_options)
        self._create(providers, provider_options)

    def _create(self, providers: Sequence[str | tuple] | None, provider_options: Sequence[dict] | None) -> None:
        """Builds the native session; on failure the session is left as it was (set_providers)."""
        options = self._sess_options
        names, per_provider = _session_providers(providers, provider_options)
        native_options = options._to_native()
        native_options.provider_options = per_provider
        if options._edits_model():
            # External data the edits leave is read from the model's folder, as for the file.
            base_dir = os.path.dirname(os.path.abspath(self._model_path)) if self._model_path else ""
            self._sess = _C.InferenceSession.from_bytes(self._edited_model(options), native_options, names, base_dir)
        elif self._model_bytes is not None:
            self._sess = _C.InferenceSession.from_bytes(self._model_bytes, native_options, names)
        else:
            self._sess = _C.InferenceSession.from_file(self._model_path, native_options, names)
        self._provider_options = per_provider
        if options.optimized_model_filepath and options._config.get(
                "session.optimized_model_external_initializers_file_name"):
            _move_initializers_out(options)
        self._inputs = [NodeArg(i) for i in self._sess.inputs()]
        self._outputs = [NodeArg(o) for o in self._sess.outputs()]
        self._overridable = [NodeArg(o) for o in self._sess.overridable_initializers()]
        self._declared = {a.name: a.type for a in self._inputs + self._overridable}
        # graft computes sparse values densely; outputs the model declares sparse go back so.
        self._sparse_outputs = {a.name for a in self._outputs if a.type.startswith("sparse_tensor(")}
        self._required = [a.name for a in self._inputs if not a.type.startswith("optional")]

    def _edited_model(self, options: SessionOptions) -> bytes:
        import onnx

        if self._model_bytes is not None:
            model = onnx.load_from_string(self._model_bytes)
        else:
            model = onnx.load(self._model_path, load_external_data=False)
        edit_model(model, options)
        return model.SerializeToString()

    def get_inputs(self) -> list[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        return list(self._outputs)

    def get_overridable_initializers(self) -> list[NodeArg]:
        return list(self._overridable)

    def get_input_memory_infos(self) -> list:
        """Where each input is read from (host memory for every input graft takes)."""
        return [memory_info_of("cpu", 0) for _ in self._inputs]

    def get_output_memory_infos(self) -> list:
        """Where each output is made, before it is returned to the host."""
        device = "cuda" if "CUDAExecutionProvider" in self.get_providers() else "cpu"
        return [memory_info_of(device, 0) for _ in self._outputs]

    def get_input_epdevices(self) -> list:
        """The plugin-provider device of each input: graft has none, so None for each."""
        return [None for _ in self._inputs]

    def get_providers(self) -> list[str]:
        return list(self._sess.providers())

    def set_providers(self, providers: Sequence[str | tuple] | None = None,
                      provider_options: Sequence[dict] | None = None) -> None:
        """Rebuilds the session for other providers (the model and session options stay)."""
        if not providers:
            raise ValueError("set_providers needs at least one provider")
        self._create(providers, provider_options)

    def disable_fallback(self) -> None:
        """A session runs on the providers it was given; graft never falls back silently."""

    def enable_fallback(self) -> None:
        """As disable_fallback: there is no fallback to switch."""

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        """Per provider the session uses, the options it was given (as strings)."""
        return {p: dict(self._provider_options.get(p, {})) for p in self.get_providers()}

    def get_session_options(self) -> SessionOptions:
        return self._sess_options

    def get_modelmeta(self) -> ModelMetadata:
        return ModelMetadata(**self._sess.metadata())

    def get_profiling_start_time_ns(self) -> int:
        """When profiling started, in nanoseconds since the epoch; 0 with profiling off."""
        return int(self._sess.profiling_start_time_ns())

    def end_profiling(self) -> str:
        return self._sess.end_profiling()

    def get_provider_graph_assignment_info(self) -> list:
        """Per group of consecutive nodes one provider runs (each node its own group, as
        onnxruntime's CPU provider reports them), the provider and its nodes. Needs the session
        config entry session.record_ep_graph_assignment_info = "1"."""
        if self._sess_options._config.get("session.record_ep_graph_assignment_info") != "1":
            raise _C.Fail("Session configuration entry 'session.record_ep_graph_assignment_info' must be set to "
                          "\"1\" to get the provider graph assignment information")
        return [OrtEpAssignedSubgraph(provider, [OrtEpAssignedNode(name, op_type, domain)])
                for provider, name, op_type, domain in self._sess.node_assignments()]

    def get_tuning_results(self) -> list[dict]:
        """Kernel tuning results per provider: graft's kernels choose their algorithms without a
        tuning pass, so there are none to report."""
        return []

    def set_tuning_results(self, tuning_results: Sequence[dict], error_on_invalid: bool = False) -> None:
        for result in tuning_results:
            provider = result.get("ep") if isinstance(result, dict) else None
            if provider not in self.get_providers():
                if error_on_invalid:
                    raise RuntimeError(f"Cannot find execution provider {provider}")
                continue
            if result.get("results") and error_on_invalid:
                raise RuntimeError(f"{provider} has no tunable kernels: graft cannot consume these results")

    def planned_peak_bytes(self) -> dict[str, int]:
        """Bytes of the arenas the latest run's memory pattern planned, per allocator name
        ("Cpu", "Cuda"): the peak of the intermediate tensors, outputs and inputs not included.
        Empty before the first run and with SessionOptions.enable_mem_pattern off."""
        return dict(self._sess.planned_peak_bytes())

    def io_binding(self) -> "IOBinding":
        return IOBinding(self)

    def run_with_iobinding(self, iobinding: "IOBinding", run_options: RunOptions | None = None) -> None:
        """Runs with the binding's inputs; its outputs are where the binding says (get_outputs)."""
        iobinding._run(run_options)

    def run_with_ort_values(self, output_names: Sequence[str] | None, input_dict_ort_values: dict[str, "OrtValue"],
                            run_options: RunOptions | None = None) -> list["OrtValue"]:
        """run() with OrtValues in and out; outputs made on a device stay there."""
        self._check_feeds(input_dict_ort_values)
        feeds = {name: OrtValue.ortvalue_from_numpy(_dense(v)) if v.is_sparse_tensor() else v
                 for name, v in input_dict_ort_values.items()}
        names = list(output_names or [o.name for o in self._outputs])
        outputs = run_with_ort_values(self, names, feeds, run_options)
        return [OrtValue.ort_value_from_sparse_tensor(SparseTensor.from_dense(v.numpy()))
                if name in self._sparse_outputs else v for name, v in zip(names, outputs)]

    def run_with_ortvaluevector(self, run_options: RunOptions | None, feed_names: Sequence[str],
                                feeds: Sequence[Any], fetch_names: Sequence[str], fetches: Any,
                                fetch_devices: Sequence[Any] | None = None) -> None:
        """onnxruntime's low-level run: feeds by position (an OrtValueVector or list of OrtValues),
        the outputs appended to `fetches` (an OrtValueVector)."""
        values = [f._ortvalue if isinstance(f, OrtValue) else f for f in feeds]
        outputs = _C.run_with_values(self._sess, list(fetch_names), dict(zip(feed_names, values)), True,
                                     run_options)
        for value in outputs:
            fetches.push_back(value)

    def run_async(self, output_names: Sequence[str] | None, input_feed: dict[str, Any], callback: Any,
                  user_data: Any, run_options: RunOptions | None = None) -> None:
        """Starts run() on another thread and returns; callback(outputs, user_data, error) is
        called when it ends (error "" on success, outputs None on failure)."""
        import threading

        def work() -> None:
            try:
                outputs = self.run(output_names, input_feed, run_options)
            except Exception as e:  # reported to the callback, which is the only one to hear it
                callback(None, user_data, f"{type(e).__name__}: {e}")
                return
            callback(outputs, user_data, "")

        threading.Thread(target=work, daemon=True).start()

    def _check_feeds(self, feeds: dict[str, Any]) -> None:
        missing = [name for name in self._required if name not in feeds]
        if missing:
            raise ValueError(f"Required inputs ({missing}) are missing from input feed ({list(feeds)}).")

    def run(self, output_names: Sequence[str] | None, input_feed: dict[str, Any],
            run_options: RunOptions | None = None) -> list[Any]:
        adapter_feeds = _adapter_feeds(run_options, self._declared) if run_options is not None else {}
        self._check_feeds({**adapter_feeds, **input_feed})
        feeds = {name: _to_native(_dense(value), self._declared.get(name)) for name, value in input_feed.items()}
        feeds.update(adapter_feeds)
        names = list(output_names or [])
        outs = [_from_native(v) for v in self._sess.run(names, feeds, run_options)]
        returned = names or [o.name for o in self._outputs]
        for i, name in enumerate(returned):
            if name in self._sparse_outputs:
                outs[i] = SparseTensor.from_dense(outs[i])
            elif name in input_feed and isinstance(outs[i], np.ndarray):
                # An output that is also an input is a copy: the caller's array stays theirs.
                outs[i] = outs[i].copy()
        return outs


class OrtEpAssignedNode:
    """A node as a provider was assigned it."""

    def __init__(self, name: str, op_type: str, domain: str) -> None:
        self.name, self.op_type, self.domain = name, op_type, domain


class OrtEpAssignedSubgraph:
    """Nodes one provider runs together."""

    def __init__(self, ep_name: str, nodes: list[OrtEpAssignedNode]) -> None:
        self.ep_name = ep_name
        self._nodes = nodes

    def get_nodes(self) -> list[OrtEpAssignedNode]:
        return list(self._nodes)


def _dense(value: Any) -> Any:
    """A sparse feed (a SparseTensor or an OrtValue holding one) as its dense array; an OrtValue
    as its tensor's array; anything else as it is."""
    if isinstance(value, OrtValue):
        return value.as_sparse_tensor().densify() if value.is_sparse_tensor() else value.numpy()
    if isinstance(value, SparseTensor):
        return value.densify()
    return value


def _adapter_feeds(run_options: RunOptions, declared: dict[str, str]) -> dict[str, Any]:
    """The parameters of the run's active LoRA adapters, for the model inputs they name."""
    feeds = {}
    for adapter in run_options._adapters:
        for name, value in adapter._parameters.items():
            if name not in declared:
                raise ValueError(f"the active adapter's parameter '{name}' is not an input of the model")
            feeds[name] = _to_native(value.numpy(), declared[name])
    return feeds


def _move_initializers_out(options: SessionOptions) -> None:
    """Rewrites the optimized model just saved with its initializers of at least
    session.optimized_model_external_initializers_min_size_in_bytes bytes in the external file
    session.optimized_model_external_initializers_file_name, beside the model."""
    import onnx

    path = options.optimized_model_filepath
    location = options._config["session.optimized_model_external_initializers_file_name"]
    if os.path.isabs(location) or ".." in location.replace("\\", "/").split("/"):
        raise ValueError(f"session.optimized_model_external_initializers_file_name '{location}' must be a path "
                         "inside the optimized model's folder")
    threshold = int(options._config.get("session.optimized_model_external_initializers_min_size_in_bytes", "1024"))
    model = onnx.load(path)
    target = os.path.join(os.path.dirname(os.path.abspath(path)), location)
    if os.path.exists(target):
        os.remove(target)
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=location,
                    size_threshold=threshold, convert_attribute=False)
    # The file exists even when no initializer reaches the size, as onnxruntime writes it.
    open(target, "ab").close()
