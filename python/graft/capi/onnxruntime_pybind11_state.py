"""onnxruntime.capi.onnxruntime_pybind11_state: the same module as _pybind_state."""

from ._pybind_state import *  # noqa: F401,F403
from ._pybind_state import __all__  # noqa: F401
