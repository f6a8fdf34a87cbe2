"""The native layer under graft's Python API, with onnxruntime's names
(onnxruntime.capi._pybind_state): errors, OrtValue and OrtValueVector of graft._C, and the
objects the Python layer defines once and this module re-exports."""

from __future__ import annotations

from .. import _C
from .._C import Fail, InvalidArgument, NotImplemented, OrtValue, OrtValueVector, is_dlpack_uint8_tensor
from ..adapters import AdapterFormat, LoraAdapter
from ..devices import (OrtAllocatorType, OrtArenaCfg, OrtDevice, OrtDeviceMemoryType, OrtDeviceVendorId,
                       OrtMemoryInfo, OrtMemoryInfoDeviceType, OrtMemType, create_and_register_allocator,
                       create_and_register_allocator_v2)
from ..iobinding import SessionIOBinding
from ..info import (disable_telemetry_events, enable_telemetry_events, get_build_info, get_device,
                    get_version_string, set_default_logger_severity, set_default_logger_verbosity, set_seed)
from ..session import ModelMetadata, NodeArg, get_all_providers, get_available_providers
from ..session_options import ExecutionMode, ExecutionOrder, GraphOptimizationLevel, RunOptions, SessionOptions
from ..sparse import OrtSparseFormat, SparseTensor

InferenceSession = _C.InferenceSession


def get_default_session_options() -> SessionOptions:
    return SessionOptions()


__all__ = [
    "AdapterFormat", "ExecutionMode", "ExecutionOrder", "Fail", "GraphOptimizationLevel", "InferenceSession",
    "InvalidArgument", "LoraAdapter", "ModelMetadata", "NodeArg", "NotImplemented", "OrtAllocatorType", "OrtArenaCfg",
    "OrtDevice", "OrtDeviceMemoryType", "OrtDeviceVendorId", "OrtMemType", "OrtMemoryInfo", "OrtMemoryInfoDeviceType",
    "OrtSparseFormat", "OrtValue", "OrtValueVector", "RunOptions", "SessionIOBinding", "SessionOptions", "SparseTensor",
    "create_and_register_allocator", "create_and_register_allocator_v2", "disable_telemetry_events",
    "enable_telemetry_events", "get_all_providers", "get_available_providers", "get_build_info",
    "get_default_session_options", "get_device", "get_version_string", "is_dlpack_uint8_tensor",
    "set_default_logger_severity", "set_default_logger_verbosity", "set_seed",
]
