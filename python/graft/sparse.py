"""SparseTensor with onnxruntime's interface: COO, CSR(C) and block-sparse tensors built over
NumPy arrays, fed to a model input of type sparse_tensor(...) or returned by a run.

graft's kernels compute on dense tensors, so a sparse feed becomes its dense equivalent at the
session's boundary (densify) and a sparse output comes back in COO form (from_dense)."""

from __future__ import annotations

import enum
from typing import Sequence

import numpy as np

from . import _types
from .devices import OrtDevice


class OrtSparseFormat(enum.IntEnum):
    ORT_SPARSE_UNDEFINED = 0
    ORT_SPARSE_COO = 1
    ORT_SPARSE_CSRC = 2
    ORT_SPARSE_BLOCK_SPARSE = 4


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def _values(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1 and values.size:
        values = values.reshape(-1)
    if values.dtype.kind in ("U", "S"):
        return values.astype(object)
    return values


def _indices(name: str, indices: np.ndarray) -> np.ndarray:
    indices = np.asarray(indices)
    if indices.dtype != np.int64:
        raise TypeError(f"{name} must be int64, got {indices.dtype}")
    return indices


class SparseCooView:
    def __init__(self, indices: np.ndarray) -> None:
        self._indices = indices

    def indices(self) -> np.ndarray:
        """Linear indices [nnz] or coordinates [nnz, rank], read-only."""
        return _read_only(self._indices)


class SparseCsrView:
    def __init__(self, inner: np.ndarray, outer: np.ndarray) -> None:
        self._inner = inner
        self._outer = outer

    def inner(self) -> np.ndarray:
        return _read_only(self._inner)

    def outer(self) -> np.ndarray:
        return _read_only(self._outer)


class SparseBlockSparseView:
    def __init__(self, indices: np.ndarray) -> None:
        self._indices = indices

    def indices(self) -> np.ndarray:
        return _read_only(self._indices)


class SparseTensor:
    """A sparse tensor: its dense shape, the non-zero values and their indices in one format.
    Numeric values and indices are the caller's arrays, not copies (keep them unchanged)."""

    def __init__(self, fmt: OrtSparseFormat, dense_shape: Sequence[int], values: np.ndarray,
                 indices: tuple[np.ndarray, ...], device: OrtDevice | None = None) -> None:
        self._format = OrtSparseFormat(fmt)
        self._shape = [int(d) for d in dense_shape]
        if any(d < 0 for d in self._shape):
            raise ValueError(f"sparse tensor dense shape {self._shape} has a negative dimension")
        self._values = _values(values)
        _types.code_of(self._values.dtype)  # raises TypeError for a dtype graft lacks
        self._indices = indices
        self._device = device or OrtDevice.make("cpu", 0)
        if self._device.name() != "cpu":
            raise RuntimeError(f"sparse tensors live in host memory here, not on {self._device.name()}")

    @staticmethod
    def sparse_coo_from_numpy(dense_shape: Sequence[int], values: np.ndarray, coo_indices: np.ndarray,
                              ort_device: OrtDevice | None = None) -> "SparseTensor":
        """COO: coo_indices are linear indices [nnz] into the dense tensor, or coordinates
        [nnz, rank] (2-D tensors)."""
        values = _values(values)
        indices = _indices("coo_indices", coo_indices)
        total = int(np.prod(dense_shape)) if len(dense_shape) else 1
        if indices.ndim == 1:
            if indices.shape[0] != values.shape[0]:
                raise ValueError(f"{indices.shape[0]} COO indices for {values.shape[0]} values")
            if indices.size and (indices.min() < 0 or indices.max() >= total):
                raise ValueError(f"a COO index lies outside the dense shape {list(dense_shape)}")
        elif indices.ndim == 2:
            if indices.shape != (values.shape[0], len(dense_shape)):
                raise ValueError(f"COO coordinates of shape {list(indices.shape)} do not match {values.shape[0]} "
                                 f"values of a rank-{len(dense_shape)} tensor")
        else:
            raise ValueError("COO indices must be 1-D (linear) or 2-D (coordinates)")
        return SparseTensor(OrtSparseFormat.ORT_SPARSE_COO, dense_shape, values, (indices,), ort_device)

    @staticmethod
    def sparse_csr_from_numpy(dense_shape: Sequence[int], values: np.ndarray, inner_indices: np.ndarray,
                              outer_indices: np.ndarray, ort_device: OrtDevice | None = None) -> "SparseTensor":
        """CSR of a 2-D tensor: inner_indices are the column of each value, outer_indices
        (rows + 1 entries) where each row's values start."""
        values = _values(values)
        inner = _indices("inner_indices", inner_indices)
        outer = _indices("outer_indices", outer_indices)
        if len(dense_shape) != 2:
            raise ValueError(f"CSR describes 2-D tensors, not shape {list(dense_shape)}")
        if inner.shape != values.shape[:1]:
            raise ValueError(f"{inner.size} inner indices for {values.shape[0]} values")
        if outer.shape != (int(dense_shape[0]) + 1,) or (outer.size and outer[-1] != values.shape[0]):
            raise ValueError(f"outer indices must be {int(dense_shape[0]) + 1} row starts ending at {values.shape[0]}")
        return SparseTensor(OrtSparseFormat.ORT_SPARSE_CSRC, dense_shape, values, (inner, outer), ort_device)

    @staticmethod
    def blocksparse_from_numpy(dense_shape: Sequence[int], values: np.ndarray, indices: np.ndarray,
                               ort_device: OrtDevice | None = None) -> "SparseTensor":
        values = np.asarray(values)
        return SparseTensor(OrtSparseFormat.ORT_SPARSE_BLOCK_SPARSE, dense_shape, values,
                            (np.asarray(indices, dtype=np.int32),), ort_device)

    @staticmethod
    def from_dense(dense: np.ndarray) -> "SparseTensor":
        """The COO form (linear indices) of a dense array's non-zero elements."""
        dense = np.asarray(dense)
        flat = dense.reshape(-1)
        nonzero = np.flatnonzero(flat != (b"" if flat.dtype.kind == "S" else "" if flat.dtype.kind in "UO" else 0))
        return SparseTensor.sparse_coo_from_numpy(list(dense.shape), flat[nonzero], nonzero.astype(np.int64))

    def format(self) -> OrtSparseFormat:
        return self._format

    def dense_shape(self) -> list[int]:
        return list(self._shape)

    def data_type(self) -> str:
        return f"sparse_tensor({_types.NAMES[_types.code_of(self._values.dtype)]})"

    def device_name(self) -> str:
        return self._device.name()

    def values(self) -> np.ndarray:
        """The non-zero values, read-only."""
        return _read_only(self._values)

    def as_coo_view(self) -> SparseCooView:
        self._expect(OrtSparseFormat.ORT_SPARSE_COO)
        return SparseCooView(self._indices[0])

    def as_csrc_view(self) -> SparseCsrView:
        self._expect(OrtSparseFormat.ORT_SPARSE_CSRC)
        return SparseCsrView(*self._indices)

    def as_blocksparse_view(self) -> SparseBlockSparseView:
        self._expect(OrtSparseFormat.ORT_SPARSE_BLOCK_SPARSE)
        return SparseBlockSparseView(self._indices[0])

    def to_cuda(self, ort_device: OrtDevice) -> "SparseTensor":
        raise RuntimeError("graft keeps sparse tensors in host memory: to_cuda is not available "
                           "(feed the sparse tensor; the session moves its dense form to the device)")

    def densify(self) -> np.ndarray:
        """The dense tensor this sparse tensor describes."""
        dtype = self._values.dtype
        dense = np.zeros(self._shape, dtype=dtype) if dtype != object else np.full(self._shape, "", dtype=object)
        flat = dense.reshape(-1)
        if self._format == OrtSparseFormat.ORT_SPARSE_COO:
            indices = self._indices[0]
            if indices.ndim == 2:
                indices = np.ravel_multi_index(tuple(indices.T), self._shape) if indices.size else indices[:, 0]
            flat[indices] = self._values
        elif self._format == OrtSparseFormat.ORT_SPARSE_CSRC:
            inner, outer = self._indices
            rows = np.repeat(np.arange(self._shape[0]), np.diff(outer))
            dense[rows, inner] = self._values
        else:
            raise RuntimeError("block-sparse tensors cannot be fed to a graft session")
        return dense

    def _expect(self, fmt: OrtSparseFormat) -> None:
        if self._format != fmt:
            raise RuntimeError(f"this sparse tensor is in {self._format.name} format, not {fmt.name}")
