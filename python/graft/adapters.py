"""LoRA adapters with onnxruntime's names: AdapterFormat writes and reads a set of named
parameters, LoraAdapter loads one for RunOptions.add_active_adapter, which feeds its parameters
to the model inputs of the same names.

graft stores an adapter as an ONNX model that holds only initializers (the parameters) and the
two versions in its metadata, so any ONNX tool can read it. onnxruntime's own .onnx_adapter files
(a FlatBuffers format of its own) are not read."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .iobinding import OrtValue

_ADAPTER_VERSION = "graft.adapter_version"
_MODEL_VERSION = "graft.model_version"


class AdapterFormat:
    def __init__(self) -> None:
        self._adapter_version = 0
        self._model_version = 0
        self._parameters: dict[str, OrtValue] = {}

    def set_adapter_version(self, version: int) -> None:
        self._adapter_version = int(version)

    def get_adapter_version(self) -> int:
        return self._adapter_version

    def set_model_version(self, version: int) -> None:
        self._model_version = int(version)

    def get_model_version(self) -> int:
        return self._model_version

    def set_parameters(self, parameters: dict[str, OrtValue]) -> None:
        for name, value in parameters.items():
            if not isinstance(value, OrtValue) or not value.is_tensor():
                raise TypeError(f"adapter parameter '{name}' must be an OrtValue holding a tensor")
        self._parameters = dict(parameters)

    def get_parameters(self) -> dict[str, OrtValue]:
        return dict(self._parameters)

    def export_adapter(self, file_path: str | os.PathLike) -> None:
        from onnx import helper, numpy_helper

        tensors = [numpy_helper.from_array(np.asarray(v.numpy()), name) for name, v in self._parameters.items()]
        graph = helper.make_graph([], "lora_adapter", [], [], initializer=tensors)
        model = helper.make_model(graph, producer_name="graft")
        helper.set_model_props(model, {_ADAPTER_VERSION: str(self._adapter_version),
                                       _MODEL_VERSION: str(self._model_version)})
        path = os.fspath(file_path)
        partial = path + ".partial"
        with open(partial, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(partial, path)

    @staticmethod
    def read_adapter(file_path: str | os.PathLike) -> "AdapterFormat":
        import onnx
        from onnx import numpy_helper

        path = os.fspath(file_path)
        try:
            model = onnx.load(path)
        except Exception as e:  # a protobuf decode error or an unreadable file
            raise RuntimeError(f"'{path}' is not a graft adapter file: {e}") from None
        props = {p.key: p.value for p in model.metadata_props}
        if _ADAPTER_VERSION not in props:
            raise RuntimeError(f"'{path}' is not a graft adapter file (no {_ADAPTER_VERSION} metadata); "
                               "onnxruntime's .onnx_adapter format is not read")
        adapter = AdapterFormat()
        adapter._adapter_version = int(props[_ADAPTER_VERSION])
        adapter._model_version = int(props.get(_MODEL_VERSION, "0"))
        adapter._parameters = {t.name: OrtValue.ortvalue_from_numpy(numpy_helper.to_array(t))
                               for t in model.graph.initializer}
        return adapter


class LoraAdapter:
    """An adapter's parameters, loaded once and activated per run (RunOptions.add_active_adapter)."""

    def __init__(self) -> None:
        self._parameters: dict[str, OrtValue] = {}

    def Load(self, adapter_file_path: str | os.PathLike) -> None:  # noqa: N802 (onnxruntime's name)
        self._parameters = AdapterFormat.read_adapter(adapter_file_path).get_parameters()

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self._parameters)
