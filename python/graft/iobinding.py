"""OrtValue and IOBinding with onnxruntime's interface: values that stay in a device's memory
between runs, and inputs and outputs bound to memory before a run."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import _C, _types

_DEVICE_TYPES = ("cpu", "cuda")
_DLPACK_CUDA = 2


def _device_type(device_type: str) -> str:
    name = str(device_type).lower()
    if name not in _DEVICE_TYPES:
        raise ValueError(f"device_type must be one of {', '.join(_DEVICE_TYPES)}, got {device_type!r}")
    return name


def _element_code(element_type: Any) -> int:
    return _types.code_of(np.dtype(element_type))


class OrtValue:
    """A value graft holds: a tensor in host or device memory (or a sequence, map or optional a
    run returned). A CPU OrtValue made from a NumPy array shares the array's memory, as
    onnxruntime's does; one on a device is a copy there."""

    def __init__(self, native: "_C.OrtValue") -> None:
        self._ortvalue = native

    @staticmethod
    def ortvalue_from_numpy(numpy_obj: np.ndarray, device_type: str = "cpu", device_id: int = 0) -> "OrtValue":
        arr = np.asarray(numpy_obj)
        if arr.dtype.kind in ("U", "S"):
            arr = arr.astype(object)
        return OrtValue(_C.OrtValue.from_numpy(_types.code_of(arr.dtype), arr, _device_type(device_type),
                                               int(device_id)))

    @staticmethod
    def ortvalue_from_shape_and_type(shape: Sequence[int], element_type: Any, device_type: str = "cpu",
                                     device_id: int = 0) -> "OrtValue":
        """A zero-filled tensor (for bind_ortvalue_output to write into)."""
        return OrtValue(_C.OrtValue.from_shape_and_type([int(d) for d in shape], _element_code(element_type),
                                                        _device_type(device_type), int(device_id)))

    @staticmethod
    def from_dlpack(data: Any) -> "OrtValue":
        """Wraps a DLPack producer's tensor (a torch tensor, a NumPy array, a DLPack capsule)
        without copying it; a CUDA tensor's pending work is ordered before graft's use of it."""
        if not hasattr(data, "__dlpack__"):
            return OrtValue(_C.OrtValue.from_dlpack(data))
        device_type, device_id = data.__dlpack_device__()
        kwargs: dict[str, Any] = {}
        if device_type == _DLPACK_CUDA:
            kwargs["stream"] = _C.exchange_stream("cuda", int(device_id))
        try:
            capsule = data.__dlpack__(max_version=(1, 0), **kwargs)
        except TypeError:  # a producer older than DLPack 1.0
            capsule = data.__dlpack__(**kwargs)
        return OrtValue(_C.OrtValue.from_dlpack(capsule))

    def __dlpack__(self, *, stream: int | None = None, max_version: tuple[int, int] | None = None,
                   dl_device: tuple[int, int] | None = None, copy: bool | None = None) -> Any:
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError(f"the tensor is on DLPack device {self.__dlpack_device__()}, not {tuple(dl_device)}")
        if copy:
            raise BufferError("graft lends its tensors without copying them (copy=True)")
        versioned = max_version is not None and tuple(max_version) >= (1, 0)
        return self._ortvalue.to_dlpack(stream, versioned)

    def __dlpack_device__(self) -> tuple[int, int]:
        return tuple(self._ortvalue.dlpack_device())

    def to_dlpack(self) -> Any:
        """A DLPack capsule (v0.8 layout) over the tensor."""
        return self._ortvalue.to_dlpack(None, False)

    def numpy(self) -> Any:
        """The value in host memory as NumPy (a copy for a device tensor)."""
        from .session import _from_native

        return _from_native(self._ortvalue.to_native())

    def shape(self) -> list[int]:
        return list(self._ortvalue.shape())

    def data_type(self) -> str:
        """The ONNX type, "tensor(float)"."""
        return f"tensor({_types.NAMES[self._ortvalue.element_type()]})"

    def element_type(self) -> Any:
        """The NumPy type of the elements."""
        return _types.numpy_dtype(self._ortvalue.element_type()).type

    def device_name(self) -> str:
        return self._ortvalue.device()[0]

    def device_id(self) -> int:
        return self._ortvalue.device()[1]

    def is_tensor(self) -> bool:
        return self._ortvalue.is_tensor()

    def has_value(self) -> bool:
        return self._ortvalue.has_value()

    def data_ptr(self) -> int:
        return self._ortvalue.data_ptr()

    def __repr__(self) -> str:
        if not self.is_tensor():
            return "OrtValue(not a tensor)"
        return f"OrtValue({self.data_type()}, shape={self.shape()}, device='{self.device_name()}:{self.device_id()}')"


class IOBinding:
    """Inputs and outputs of a session bound before `InferenceSession.run_with_iobinding`. An
    output bound to a device stays there (get_outputs); one bound to a buffer (buffer_ptr,
    bind_ortvalue_output) receives a copy of the result. With no output bound a run returns every
    output where it was made."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input_names = [i.name for i in session.get_inputs()] + [
            i.name for i in session.get_overridable_initializers()]
        self._output_names = [o.name for o in session.get_outputs()]
        self._inputs: dict[str, _C.OrtValue] = {}
        # Per bound output, in binding order: ("device", type, id) or ("buffer", OrtValue).
        self._bound: dict[str, tuple] = {}
        self._outputs: list[OrtValue] = []

    def _check_input(self, name: str) -> None:
        if name not in self._input_names:
            raise ValueError(f"bind_input: the model has no input '{name}' (inputs: {', '.join(self._input_names)})")

    def _check_output(self, name: str) -> None:
        if name not in self._output_names:
            raise ValueError(f"bind_output: the model has no output '{name}' "
                             f"(outputs: {', '.join(self._output_names)})")

    def bind_cpu_input(self, name: str, arr_on_cpu: np.ndarray) -> None:
        self.bind_ortvalue_input(name, OrtValue.ortvalue_from_numpy(arr_on_cpu))

    def bind_input(self, name: str, device_type: str, device_id: int, element_type: Any,
                   shape: Sequence[int], buffer_ptr: int) -> None:
        """Binds memory the caller owns (and keeps alive until the run is done) at `buffer_ptr`."""
        self._check_input(name)
        self._inputs[name] = _C.OrtValue.from_pointer(int(buffer_ptr), _element_code(element_type),
                                                      [int(d) for d in shape], _device_type(device_type),
                                                      int(device_id))

    def bind_ortvalue_input(self, name: str, ortvalue: OrtValue) -> None:
        self._check_input(name)
        self._inputs[name] = ortvalue._ortvalue

    def bind_output(self, name: str, device_type: str = "cpu", device_id: int = 0, element_type: Any = None,
                    shape: Sequence[int] | None = None, buffer_ptr: int | None = None) -> None:
        """The output is left in device_type's memory, or, with buffer_ptr (and element_type and
        shape), copied into the caller's buffer there."""
        self._check_output(name)
        device_type = _device_type(device_type)
        if buffer_ptr is None:
            self._bound[name] = ("device", device_type, int(device_id))
            return
        if element_type is None or shape is None:
            raise ValueError(f"bind_output('{name}'): a buffer_ptr needs its element_type and shape")
        target = _C.OrtValue.from_pointer(int(buffer_ptr), _element_code(element_type), [int(d) for d in shape],
                                          device_type, int(device_id))
        self._bound[name] = ("buffer", target)

    def bind_ortvalue_output(self, name: str, ortvalue: OrtValue) -> None:
        """The output is copied into `ortvalue`'s tensor, which must have its type and shape."""
        self._check_output(name)
        self._bound[name] = ("buffer", ortvalue._ortvalue)

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()

    def clear_binding_outputs(self) -> None:
        self._bound.clear()
        self._outputs = []

    def synchronize_inputs(self) -> None:
        """Waits for the device work that writes the bound inputs."""
        for value in self._inputs.values():
            if value.is_tensor():
                value.synchronize()

    def synchronize_outputs(self) -> None:
        """Waits for the device work that writes the outputs of the latest run."""
        for value in self._outputs:
            if value.is_tensor():
                value._ortvalue.synchronize()

    def get_outputs(self) -> list[OrtValue]:
        """The outputs of the latest run, in binding order (every output's, if none was bound)."""
        return list(self._outputs)

    def copy_outputs_to_cpu(self) -> list[Any]:
        return [o.numpy() for o in self._outputs]

    def _run(self) -> None:
        names = list(self._bound) or list(self._output_names)
        values = _C.run_with_values(self._session._sess, names, self._inputs, True)
        outputs = []
        for name, value in zip(names, values):
            bound = self._bound.get(name)
            if bound is None:
                outputs.append(OrtValue(value))
            elif bound[0] == "device":
                outputs.append(OrtValue(value.to_device(bound[1], bound[2])))
            else:
                value.copy_into(bound[1], name)
                outputs.append(OrtValue(bound[1]))
        self._outputs = outputs


def run_with_ort_values(session: Any, output_names: Sequence[str] | None,
                        input_dict_ort_values: dict[str, OrtValue]) -> list[OrtValue]:
    feeds = {name: value._ortvalue for name, value in input_dict_ort_values.items()}
    return [OrtValue(v) for v in _C.run_with_values(session._sess, list(output_names or []), feeds, True)]
