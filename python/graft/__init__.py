"""graft: train and serve neural networks with ONNX as the native format.

The inference interface mirrors onnxruntime's, so existing code switches by changing the import.
"""

from ._C import Fail, InvalidArgument, NotImplemented, get_rng_state, seed, set_rng_state
from .session import (
    ExecutionMode,
    GraphOptimizationLevel,
    InferenceSession,
    ModelMetadata,
    NodeArg,
    RunOptions,
    SessionOptions,
    get_available_providers,
    get_device,
)

__version__ = "0.1.0"

__all__ = [
    "ExecutionMode",
    "Fail",
    "GraphOptimizationLevel",
    "InferenceSession",
    "InvalidArgument",
    "ModelMetadata",
    "NodeArg",
    "NotImplemented",
    "RunOptions",
    "SessionOptions",
    "get_available_providers",
    "get_device",
    "get_rng_state",
    "seed",
    "set_rng_state",
]
