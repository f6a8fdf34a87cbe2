"""graft: train and serve neural networks with ONNX as the native format.

The inference interface mirrors onnxruntime's, so existing code switches by changing the import.
The subpackages (graft.autodiff, graft.training, graft.distributed, graft.torch, ...) are loaded
on first use, so `import graft` stays fast and never imports PyTorch.
"""

import importlib as _importlib
import os as _os

# GNU OpenMP, which runs graft's and oneDNN's threads, reads how long idle threads spin once, when
# _C loads it; its default (300000 pauses per barrier) starves other processes on the same cores.
# graft asks for a short spin (exec/threading.h, kOpenMPSpinCount) unless the user chose, or
# another extension (torch) loaded libgomp already: the first session then says what to set.
_OPENMP_SPIN_COUNT = "3000"


def _openmp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return any("/libgomp" in line for line in maps)
    except OSError:
        return False


if "GOMP_SPINCOUNT" not in _os.environ and "OMP_WAIT_POLICY" not in _os.environ and not _openmp_loaded():
    _os.environ["GOMP_SPINCOUNT"] = _OPENMP_SPIN_COUNT

from ._C import Fail, InvalidArgument, NotImplemented, get_rng_state, seed, set_rng_state
from .adapters import AdapterFormat, LoraAdapter
from .devices import (
    OrtAllocatorType,
    OrtArenaCfg,
    OrtDevice,
    OrtDeviceMemoryType,
    OrtDeviceVendorId,
    OrtMemoryInfo,
    OrtMemoryInfoDeviceType,
    OrtMemType,
    create_and_register_allocator,
    create_and_register_allocator_v2,
)
from .info import VERSION as __version__
from .info import (
    disable_telemetry_events,
    enable_telemetry_events,
    get_build_info,
    get_device,
    get_version_string,
    set_default_logger_severity,
    set_default_logger_verbosity,
    set_seed,
)
from .iobinding import IOBinding, OrtValue, OrtValueVector
from .session import (
    InferenceSession,
    ModelMetadata,
    NodeArg,
    OrtEpAssignedNode,
    OrtEpAssignedSubgraph,
    get_all_providers,
    get_available_providers,
)
from .session_options import ExecutionMode, ExecutionOrder, GraphOptimizationLevel, RunOptions, SessionOptions
from .sparse import OrtSparseFormat, SparseTensor

version = __version__

__all__ = [
    "AdapterFormat",
    "ExecutionMode",
    "ExecutionOrder",
    "Fail",
    "GraphOptimizationLevel",
    "IOBinding",
    "InferenceSession",
    "InvalidArgument",
    "LoraAdapter",
    "ModelMetadata",
    "NodeArg",
    "NotImplemented",
    "OrtAllocatorType",
    "OrtArenaCfg",
    "OrtDevice",
    "OrtDeviceMemoryType",
    "OrtDeviceVendorId",
    "OrtEpAssignedNode",
    "OrtEpAssignedSubgraph",
    "OrtMemType",
    "OrtMemoryInfo",
    "OrtMemoryInfoDeviceType",
    "OrtSparseFormat",
    "OrtValue",
    "OrtValueVector",
    "RunOptions",
    "SessionOptions",
    "SparseTensor",
    "create_and_register_allocator",
    "create_and_register_allocator_v2",
    "disable_telemetry_events",
    "enable_telemetry_events",
    "get_all_providers",
    "get_available_providers",
    "get_build_info",
    "get_device",
    "get_rng_state",
    "get_version_string",
    "seed",
    "set_default_logger_severity",
    "set_default_logger_verbosity",
    "set_rng_state",
    "set_seed",
]

# Submodules imported when first touched (PEP 562): graft.torch imports torch, graft.training and
# graft.autodiff import onnx; a plain `import graft` needs none of them.
_SUBMODULES = (
    "autodiff",
    "adapters",
    "backend",
    "capi",
    "checkpoint",
    "datasets",
    "devices",
    "distributed",
    "info",
    "iobinding",
    "lr_scheduler",
    "optim",
    "session",
    "session_options",
    "sparse",
    "torch",
    "training",
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        # import_module also binds the submodule as an attribute of the package, so this runs
        # once per submodule.
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULES))
