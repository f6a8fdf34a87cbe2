"""onnxruntime.capi.onnxruntime_inference_collection: the Python classes over the native layer."""

from ..iobinding import IOBinding, OrtValue
from ..session import InferenceSession, check_and_normalize_provider_args
from ..sparse import SparseTensor

__all__ = ["IOBinding", "InferenceSession", "OrtValue", "SparseTensor", "check_and_normalize_provider_args"]
