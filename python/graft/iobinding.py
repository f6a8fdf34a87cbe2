"""OrtValue and IOBinding with onnxruntime's interface: values that stay in a device's memory
between runs, and inputs and outputs bound to memory before a run."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import _C, _types
from .devices import OrtDevice

_DEVICE_TYPES = ("cpu", "cuda")

# A list of graft._C.OrtValue as onnxruntime's low-level API passes them (push_back, len, index).
OrtValueVector = _C.OrtValueVector
_DLPACK_CUDA = 2


def _device_type(device_type: str) -> str:
    name = str(device_type).lower()
    if name not in _DEVICE_TYPES:
        raise ValueError(f"device_type must be one of {', '.join(_DEVICE_TYPES)}, got {device_type!r}")
    return name


def _element_code(element_type: Any) -> int:
    """A NumPy type or an ONNX element type code -> the code."""
    if isinstance(element_type, (int, np.integer)) and not isinstance(element_type, bool):
        if int(element_type) not in _types.NAMES:
            raise ValueError(f"{element_type} is not an ONNX element type")
        return int(element_type)
    return _types.code_of(np.dtype(element_type))


class OrtValue:
    """A value graft holds: a tensor in host or device memory (or a sequence, map or optional a
    run returned, or a sparse tensor). A CPU OrtValue made from a NumPy array shares the array's
    memory, as onnxruntime's does; one on a device is a copy there."""

    def __init__(self, ortvalue: Any, numpy_obj: Any = None) -> None:
        self._ortvalue = ortvalue
        self._numpy_obj = numpy_obj  # keeps the array a CPU tensor shares alive
        self._sparse = None

    @staticmethod
    def ortvalue_from_numpy(numpy_obj: np.ndarray, device_type: str = "cpu", device_id: int = 0,
                            vendor_id: int = -1) -> "OrtValue":
        arr = np.asarray(numpy_obj)
        if arr.dtype.kind in ("U", "S"):
            arr = arr.astype(object)
        return OrtValue(_C.OrtValue.from_numpy(_types.code_of(arr.dtype), arr, _device_type(device_type),
                                               int(device_id)), arr)

    @staticmethod
    def ortvalue_from_numpy_with_onnx_type(data: np.ndarray, onnx_element_type: int) -> "OrtValue":
        """A CPU tensor of ONNX element type `onnx_element_type` over `data`'s memory, whose
        items must have that type's size (uint16 data for bfloat16, uint8 for float8...)."""
        code = int(onnx_element_type)
        if code not in _types.NAMES:
            raise ValueError(f"{onnx_element_type} is not an ONNX element type")
        arr = np.ascontiguousarray(data)
        return OrtValue(_C.OrtValue.from_numpy(code, arr, "cpu", 0), arr)

    @staticmethod
    def ortvalue_from_shape_and_type(shape: Sequence[int], element_type: Any, device_type: str = "cpu",
                                     device_id: int = 0, vendor_id: int = -1) -> "OrtValue":
        """A zero-filled tensor (for bind_ortvalue_output to write into). element_type is a NumPy
        type or an ONNX element type code."""
        return OrtValue(_C.OrtValue.from_shape_and_type([int(d) for d in shape], _element_code(element_type),
                                                        _device_type(device_type), int(device_id)))

    @staticmethod
    def ort_value_from_sparse_tensor(sparse_tensor: Any) -> "OrtValue":
        value = OrtValue(None)
        value._sparse = sparse_tensor
        return value

    def as_sparse_tensor(self) -> Any:
        if self._sparse is None:
            raise RuntimeError("the OrtValue does not hold a sparse tensor")
        return self._sparse

    def is_sparse_tensor(self) -> bool:
        return self._sparse is not None

    @staticmethod
    def from_dlpack(data: Any, is_bool_tensor: bool = False) -> "OrtValue":
        """Wraps a DLPack producer's tensor (a torch tensor, a NumPy array, an OrtValue, a DLPack
        capsule) without copying it; a CUDA tensor's pending work is ordered before graft's use
        of it. Booleans come back as booleans; is_bool_tensor reads 8-bit integers as booleans."""
        if not hasattr(data, "__dlpack__"):
            return OrtValue(_C.OrtValue.from_dlpack(data, is_bool_tensor))
        device_type, device_id = data.__dlpack_device__()
        kwargs: dict[str, Any] = {}
        if device_type == _DLPACK_CUDA:
            kwargs["stream"] = _C.exchange_stream("cuda", int(device_id))
        try:
            capsule = data.__dlpack__(max_version=(1, 0), **kwargs)
        except TypeError:  # a producer older than DLPack 1.0
            capsule = data.__dlpack__(**kwargs)
        return OrtValue(_C.OrtValue.from_dlpack(capsule, is_bool_tensor))

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

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """NumPy's array protocol: a CPU tensor's own memory, without a copy, when no other
        dtype is asked for."""
        arr = self.numpy()
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    def _get_c_value(self) -> Any:
        return self._ortvalue

    def numpy(self) -> Any:
        """The value in host memory as NumPy: a CPU tensor's array shares its memory, a device
        tensor comes back as a copy; sequences as lists, maps as dicts."""
        if self._sparse is not None:
            raise RuntimeError("a sparse tensor OrtValue has no dense NumPy form: use as_sparse_tensor()")
        return self._ortvalue.numpy()

    def update_inplace(self, np_arr: np.ndarray) -> None:
        """Copies the array's elements into the tensor's memory (host or device); the shape and
        element type must match."""
        arr = np.ascontiguousarray(np_arr)
        source = _C.OrtValue.from_numpy(_types.code_of(arr.dtype), arr, "cpu", 0)
        source.copy_into(self._ortvalue, "update_inplace")

    def shape(self) -> list[int]:
        if self._sparse is not None:
            return self._sparse.dense_shape()
        return list(self._ortvalue.shape())

    def data_type(self) -> str:
        """The ONNX type: "tensor(float)", "seq(tensor(int64))", "sparse_tensor(float)"..."""
        if self._sparse is not None:
            return self._sparse.data_type()
        return self._ortvalue.type_name()

    def element_type(self) -> int:
        """The ONNX element type code of the tensor's elements (1 for float)."""
        return int(self._ortvalue.element_type())

    def tensor_size_in_bytes(self) -> int:
        return int(self._ortvalue.nbytes())

    def device_name(self) -> str:
        if self._sparse is not None:
            return self._sparse.device_name()
        return self._ortvalue.device()[0]

    def device_id(self) -> int:
        return self._ortvalue.device()[1]

    def is_tensor(self) -> bool:
        return self._sparse is None and self._ortvalue.is_tensor()

    def is_tensor_sequence(self) -> bool:
        return self._sparse is None and self._ortvalue.type_name().startswith("seq(")

    def has_value(self) -> bool:
        return self._sparse is not None or self._ortvalue.has_value()

    def data_ptr(self) -> int:
        return self._ortvalue.data_ptr()

    def __repr__(self) -> str:
        if not self.is_tensor():
            return f"OrtValue({self.data_type()})"
        return f"OrtValue({self.data_type()}, shape={self.shape()}, device='{self.device_name()}:{self.device_id()}')"


class SessionIOBinding:
    """Inputs and outputs of a native session bound before a run (onnxruntime's
    capi SessionIOBinding, under IOBinding): devices are OrtDevice objects, values graft._C
    OrtValues. An output bound to a device stays there (get_outputs); one bound to a buffer
    (buffer_ptr, bind_ortvalue_output) receives a copy of the result. With no output bound a run
    returns every output where it was made."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input_names = [i["name"] for i in session.inputs()] + [
            i["name"] for i in session.overridable_initializers()]
        self._output_names = [o["name"] for o in session.outputs()]
        self._inputs: dict[str, _C.OrtValue] = {}
        # Per bound output, in binding order: ("device", type, id) or ("buffer", OrtValue).
        self._bound: dict[str, tuple] = {}
        self._outputs = _C.OrtValueVector()

    def _check_input(self, name: str) -> None:
        if name not in self._input_names:
            raise ValueError(f"bind_input: the model has no input '{name}' (inputs: {', '.join(self._input_names)})")

    def _check_output(self, name: str) -> None:
        if name not in self._output_names:
            raise ValueError(f"bind_output: the model has no output '{name}' "
                             f"(outputs: {', '.join(self._output_names)})")

    def bind_input(self, name: str, device: OrtDevice, element_type: Any, shape: Sequence[int],
                   buffer_ptr: int) -> None:
        """Binds memory the caller owns (and keeps alive until the run is done) at `buffer_ptr`."""
        self._check_input(name)
        self._inputs[name] = _C.OrtValue.from_pointer(int(buffer_ptr), _element_code(element_type),
                                                      [int(d) for d in shape], _device_type(device.name()),
                                                      device.device_id())

    def bind_ortvalue_input(self, name: str, ortvalue: "_C.OrtValue") -> None:
        self._check_input(name)
        self._inputs[name] = ortvalue

    def bind_output(self, name: str, device: OrtDevice | None = None, element_type: Any = None,
                    shape: Sequence[int] | None = None, buffer_ptr: int | None = None) -> None:
        """The output is left in `device`'s memory (default: host), or, with buffer_ptr (and
        element_type and shape), copied into the caller's buffer there."""
        self._check_output(name)
        device = device or OrtDevice.make("cpu", 0)
        device_type = _device_type(device.name())
        if buffer_ptr is None:
            self._bound[name] = ("device", device_type, device.device_id())
            return
        if element_type is None or shape is None:
            raise ValueError(f"bind_output('{name}'): a buffer_ptr needs its element_type and shape")
        target = _C.OrtValue.from_pointer(int(buffer_ptr), _element_code(element_type), [int(d) for d in shape],
                                          device_type, device.device_id())
        self._bound[name] = ("buffer", target)

    def bind_ortvalue_output(self, name: str, ortvalue: "_C.OrtValue") -> None:
        """The output is copied into `ortvalue`'s tensor, which must have its type and shape."""
        self._check_output(name)
        self._bound[name] = ("buffer", ortvalue)

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()

    def clear_binding_outputs(self) -> None:
        self._bound.clear()
        self._outputs = _C.OrtValueVector()

    def synchronize_inputs(self) -> None:
        """Waits for the device work that writes the bound inputs."""
        for value in self._inputs.values():
            if value.is_tensor():
                value.synchronize()

    def synchronize_outputs(self) -> None:
        """Waits for the device work that writes the outputs of the latest run."""
        for value in self._outputs:
            if value.is_tensor():
                value.synchronize()

    def get_outputs(self) -> "_C.OrtValueVector":
        """The outputs of the latest run, in binding order (every output's, if none was bound)."""
        return self._outputs

    def copy_outputs_to_cpu(self) -> list[Any]:
        return [v.numpy() for v in self._outputs]

    def _run(self, run_options: Any = None) -> None:
        names = list(self._bound) or list(self._output_names)
        values = _C.run_with_values(self._session, names, self._inputs, True, run_options)
        outputs = _C.OrtValueVector()
        for name, value in zip(names, values):
            bound = self._bound.get(name)
            if bound is None:
                outputs.append(value)
            elif bound[0] == "device":
                outputs.append(value.to_device(bound[1], bound[2]))
            else:
                value.copy_into(bound[1], name)
                outputs.append(bound[1])
        self._outputs = outputs


class IOBinding:
    """Inputs and outputs of an InferenceSession bound before `run_with_iobinding`, with devices
    named by type and index ("cuda", 0) and values as OrtValue."""

    def __init__(self, session: Any) -> None:
        self._iobinding = SessionIOBinding(session._sess)

    def bind_cpu_input(self, name: str, arr_on_cpu: np.ndarray) -> None:
        self.bind_ortvalue_input(name, OrtValue.ortvalue_from_numpy(arr_on_cpu))

    def bind_input(self, name: str, device_type: str, device_id: int, element_type: Any,
                   shape: Sequence[int], buffer_ptr: int) -> None:
        """Binds memory the caller owns (and keeps alive until the run is done) at `buffer_ptr`."""
        self._iobinding.bind_input(name, OrtDevice.make(device_type, device_id), element_type, shape, buffer_ptr)

    def bind_ortvalue_input(self, name: str, ortvalue: OrtValue) -> None:
        self._iobinding.bind_ortvalue_input(name, ortvalue._ortvalue)

    def bind_output(self, name: str, device_type: str = "cpu", device_id: int = 0, element_type: Any = None,
                    shape: Sequence[int] | None = None, buffer_ptr: int | None = None) -> None:
        """The output is left in device_type's memory, or, with buffer_ptr (and element_type and
        shape), copied into the caller's buffer there."""
        self._iobinding.bind_output(name, OrtDevice.make(device_type, device_id), element_type, shape, buffer_ptr)

    def bind_ortvalue_output(self, name: str, ortvalue: OrtValue) -> None:
        """The output is copied into `ortvalue`'s tensor, which must have its type and shape."""
        self._iobinding.bind_ortvalue_output(name, ortvalue._ortvalue)

    def clear_binding_inputs(self) -> None:
        self._iobinding.clear_binding_inputs()

    def clear_binding_outputs(self) -> None:
        self._iobinding.clear_binding_outputs()

    def synchronize_inputs(self) -> None:
        self._iobinding.synchronize_inputs()

    def synchronize_outputs(self) -> None:
        self._iobinding.synchronize_outputs()

    def get_outputs(self) -> list[OrtValue]:
        """The outputs of the latest run, in binding order (every output's, if none was bound)."""
        return [OrtValue(v) for v in self._iobinding.get_outputs()]

    def copy_outputs_to_cpu(self) -> list[Any]:
        return self._iobinding.copy_outputs_to_cpu()

    def _run(self, run_options: Any = None) -> None:
        self._iobinding._run(run_options)


def run_with_ort_values(session: Any, output_names: Sequence[str] | None, input_dict_ort_values: dict[str, OrtValue],
                        run_options: Any = None) -> list[OrtValue]:
    feeds = {name: value._ortvalue for name, value in input_dict_ort_values.items()}
    return [OrtValue(v) for v in _C.run_with_values(session._sess, list(output_names or []), feeds, True,
                                                    run_options)]
