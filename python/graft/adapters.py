"""LoRA adapters with onnxruntime's names: AdapterFormat writes and reads a set of named
parameters, LoraAdapter loads one for RunOptions.add_active_adapter, which feeds its parameters
to the model inputs of the same names.

graft stores an adapter as an ONNX model that holds only initializers (the parameters) and the
two versions in its metadata, so any ONNX tool can read it. read_adapter (and LoraAdapter.Load)
also read the adapter files onnxruntime writes (FlatBuffers, file identifier "TORT")."""

from __future__ import annotations

import os
import struct
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
        with open(path, "rb") as f:
            data = f.read()
        if data[4:8] == _ORT_IDENTIFIER:
            return _read_onnxruntime_adapter(path, data)
        try:
            model = onnx.load_from_string(data)
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


_ORT_IDENTIFIER = b"TORT"


class _FlatTable:
    """One table of a FlatBuffers buffer: fields by index, read through its vtable. Every offset
    is checked against the buffer, so a damaged file raises instead of reading elsewhere."""

    def __init__(self, path: str, data: bytes, pos: int) -> None:
        self._path, self._data, self._pos = path, data, pos
        vtable = pos - self._unpack("<i", pos)
        self._vtable_size = self._unpack("<H", vtable)
        self._vtable = vtable

    def _unpack(self, fmt: str, pos: int) -> Any:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self._data):
            raise RuntimeError(f"'{self._path}' is a damaged onnxruntime adapter file (offset {pos} outside it)")
        return struct.unpack_from(fmt, self._data, pos)[0]

    def _field(self, index: int) -> int | None:
        at = 4 + 2 * index
        if at >= self._vtable_size:
            return None
        offset = self._unpack("<H", self._vtable + at)
        return self._pos + offset if offset else None

    def int32(self, index: int) -> int:
        pos = self._field(index)
        return 0 if pos is None else self._unpack("<i", pos)

    def _indirect(self, pos: int) -> int:
        return pos + self._unpack("<I", pos)

    def vector(self, index: int) -> tuple[int, int]:
        """(start, length) of a vector field; (0, 0) when absent."""
        pos = self._field(index)
        if pos is None:
            return 0, 0
        start = self._indirect(pos)
        return start + 4, self._unpack("<I", start)

    def string(self, index: int) -> str:
        start, length = self.vector(index)
        if start + length > len(self._data):
            raise RuntimeError(f"'{self._path}' is a damaged onnxruntime adapter file (a string runs past its end)")
        return self._data[start:start + length].decode()

    def tables(self, index: int) -> list["_FlatTable"]:
        start, length = self.vector(index)
        return [_FlatTable(self._path, self._data, self._indirect(start + 4 * i)) for i in range(length)]


def _read_onnxruntime_adapter(path: str, data: bytes) -> "AdapterFormat":
    from . import _types

    root = _FlatTable(path, data, struct.unpack_from("<I", data, 0)[0])
    adapter = AdapterFormat()
    adapter._adapter_version = root.int32(1)
    adapter._model_version = root.int32(2)
    for parameter in root.tables(3):
        name = parameter.string(0)
        dims_at, rank = parameter.vector(1)
        dims = [parameter._unpack("<q", dims_at + 8 * i) for i in range(rank)]
        code = parameter.int32(2)
        raw_at, nbytes = parameter.vector(3)
        try:
            dtype = _types.numpy_dtype(code)
        except TypeError:
            raise RuntimeError(f"'{path}': parameter '{name}' has element type {code}, which graft cannot read") from None
        count = int(np.prod(dims)) if dims else 1
        if dtype == object or count * dtype.itemsize != nbytes or raw_at + nbytes > len(data):
            raise RuntimeError(f"'{path}': parameter '{name}' holds {nbytes} bytes, not {count} {dtype} elements")
        values = np.frombuffer(data, dtype=dtype, count=count, offset=raw_at).reshape(dims).copy()
        adapter._parameters[name] = OrtValue.ortvalue_from_numpy(values)
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
