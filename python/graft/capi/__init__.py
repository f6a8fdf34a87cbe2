"""onnxruntime.capi's module names, so code that imports from them finds graft's objects:
_pybind_state (and its other name onnxruntime_pybind11_state) is the native layer,
onnxruntime_inference_collection the Python classes above it."""
