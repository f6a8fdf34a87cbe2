"""The GRAFTDS1 data file that the C++ training programs read (`graft train`, the C++ training
API's examples; train/dataset.h documents the layout): named arrays sharing their first
dimension, the sample axis."""

from __future__ import annotations

import os
import struct
from typing import Mapping

import numpy as np
from onnx import TensorProto

_CODES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
          np.dtype(np.int32): TensorProto.INT32, np.dtype(np.int64): TensorProto.INT64,
          np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8,
          np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.bool_): TensorProto.BOOL}
_DTYPES = {code: dtype for dtype, code in _CODES.items()}


def write_dataset(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes `arrays` (model input name -> array, all with the same number of rows)."""
    if not arrays:
        raise ValueError("write_dataset needs at least one array")
    rows = {name: np.asarray(a).shape[0] if np.ndim(a) else None for name, a in arrays.items()}
    for name, n in rows.items():
        if n is None:
            raise ValueError(f"array '{name}' is a scalar; every array needs a sample dimension")
    if len(set(rows.values())) != 1:
        raise ValueError(f"the arrays disagree in their number of samples: {rows}")
    with open(path, "wb") as f:
        f.write(b"GRAFTDS1" + struct.pack("<I", len(arrays)))
        for name, a in arrays.items():
            a = np.ascontiguousarray(a)
            if a.dtype not in _CODES:
                raise ValueError(f"array '{name}' has element type {a.dtype}, which GRAFTDS1 does not hold")
            encoded = name.encode()
            f.write(struct.pack("<I", len(encoded)) + encoded)
            f.write(struct.pack("<II", _CODES[a.dtype], a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape))
            f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())


def read_dataset(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a GRAFTDS1 file, by name."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"GRAFTDS1":
        raise ValueError(f"'{os.fspath(path)}' is not a GRAFTDS1 data file")
    (count,), pos = struct.unpack_from("<I", data, 8), 12
    arrays = {}
    for _ in range(count):
        (length,) = struct.unpack_from("<I", data, pos)
        name = data[pos + 4:pos + 4 + length].decode()
        pos += 4 + length
        code, rank = struct.unpack_from("<II", data, pos)
        shape = struct.unpack_from(f"<{rank}q", data, pos + 8)
        pos += 8 + 8 * rank
        dtype = np.dtype(_DTYPES[code]).newbyteorder("<")
        n = int(np.prod(shape)) * dtype.itemsize
        arrays[name] = np.frombuffer(data[pos:pos + n], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
        pos += n
    return arrays
