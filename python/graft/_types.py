"""Mapping between NumPy / ml_dtypes dtypes and ONNX element type codes."""

from __future__ import annotations

import numpy as np


STRING = 8

_NATIVE = {
    np.dtype(np.float32): 1,
    np.dtype(np.uint8): 2,
    np.dtype(np.int8): 3,
    np.dtype(np.uint16): 4,
    np.dtype(np.int16): 5,
    np.dtype(np.int32): 6,
    np.dtype(np.int64): 7,
    np.dtype(np.bool_): 9,
    np.dtype(np.float16): 10,
    np.dtype(np.float64): 11,
    np.dtype(np.uint32): 12,
    np.dtype(np.uint64): 13,
    np.dtype(np.complex64): 14,
    np.dtype(np.complex128): 15,
}

# ml_dtypes names -> ONNX codes, for the types NumPy lacks.
_EXTENDED = {
    "bfloat16": 16,
    "float8_e4m3fn": 17,
    "float8_e4m3fnuz": 18,
    "float8_e5m2": 19,
    "float8_e5m2fnuz": 20,
    "uint4": 21,
    "int4": 22,
    "float4_e2m1fn": 23,
    "float8_e8m0fnu": 24,
    "uint2": 25,
    "int2": 26,
}
_CODE_TO_EXTENDED = {code: name for name, code in _EXTENDED.items()}
_CODE_TO_NATIVE = {code: dt for dt, code in _NATIVE.items()}

NAMES = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
    19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1",
    24: "float8e8m0", 25: "uint2", 26: "int2",
}


def code_of(dtype: np.dtype) -> int:
    """ONNX element type code for a NumPy dtype; raises TypeError for unsupported ones."""
    dtype = np.dtype(dtype)
    if dtype in _NATIVE:
        return _NATIVE[dtype]
    if dtype.kind in ("U", "S", "O"):
        return STRING
    if dtype.name in _EXTENDED:
        return _EXTENDED[dtype.name]
    raise TypeError(f"graft does not support NumPy dtype {dtype}")


def numpy_dtype(code: int) -> np.dtype:
    """NumPy dtype for an ONNX element type code (object for strings)."""
    if code == STRING:
        return np.dtype(object)
    if code in _CODE_TO_NATIVE:
        return _CODE_TO_NATIVE[code]
    if code in _CODE_TO_EXTENDED:
        # Imported here, not with graft: ml_dtypes takes most of a second to import, and only
        # the types NumPy lacks need it (an array of them has imported it already).
        try:
            import ml_dtypes
        except ImportError:  # pragma: no cover - ml_dtypes comes with onnx
            raise TypeError(f"ONNX element type {NAMES[code]} needs the ml_dtypes package") from None
        return np.dtype(getattr(ml_dtypes, _CODE_TO_EXTENDED[code]))
    raise TypeError(f"no NumPy dtype for ONNX element type {NAMES.get(code, code)}")
