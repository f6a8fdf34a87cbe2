"""graft as an ONNX backend (onnx.backend.base.Backend), so onnx.backend.test can run it, with
onnxruntime.backend's module functions."""

from .backend import GraftBackend
from .backend_rep import GraftBackendRep

is_compatible = GraftBackend.is_compatible
prepare = GraftBackend.prepare
run = GraftBackend.run_model
run_model = GraftBackend.run_model
run_node = GraftBackend.run_node
supports_device = GraftBackend.supports_device

__all__ = ["GraftBackend", "GraftBackendRep", "is_compatible", "prepare", "run", "run_model", "run_node",
           "supports_device"]
