"""Checkpoints: named arrays, a step counter and string properties in one file, written
atomically with a checksum per tensor."""

from __future__ import annotations

import os

import numpy as np

from . import _C
from .session import _from_native, _to_native


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, np.ndarray], step: int = 0,
                    properties: dict[str, str] | None = None) -> None:
    """Writes the checkpoint; an existing file at `path` is replaced only once the new one is
    complete on disk."""
    native = {name: _to_native(np.asarray(value), None) for name, value in tensors.items()}
    _C.save_checkpoint(os.fspath(path), native, int(step), dict(properties or {}))


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], int, dict[str, str]]:
    """Returns (tensors, step, properties); raises graft.InvalidArgument for a damaged file."""
    tensors, step, properties = _C.load_checkpoint(os.fspath(path))
    return {name: _from_native(value) for name, value in tensors.items()}, step, dict(properties)
