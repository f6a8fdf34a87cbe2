"""Data-parallel launch and data: rank, size, collectives on NumPy arrays, and a sampler.

Launched by ``mpirun -np N python script.py`` with N > 1, the process joins the MPI job on
first use; otherwise it runs alone (rank 0 of 1) and MPI is never initialized. Every collective
is bounded by a timeout (``set_timeout``, or ``GRAFT_COLLECTIVE_TIMEOUT_S``, default 300 s):
a collective that does not finish in time prints the collective, rank, step and peer on stderr
and the process exits with status 1. Under a launch with several ranks, an uncaught exception
in one rank aborts the whole job (MPI_Abort) rather than leave the others waiting.
"""

from __future__ import annotations

import sys
from typing import Iterator

import numpy as np

from . import _C
from ._types import code_of

_D = _C.distributed

__all__ = [
    "DistributedSampler",
    "abort",
    "all_gather",
    "all_reduce",
    "backend",
    "barrier",
    "broadcast",
    "init",
    "is_distributed",
    "rank",
    "reduce_scatter",
    "set_step",
    "set_timeout",
    "size",
]


def init() -> str:
    """Joins the launcher's job (MPI under mpirun with several ranks); returns the backend name.

    Idempotent; the other functions call it implicitly.
    """
    return _D.init()


def rank() -> int:
    return _D.rank()


def size() -> int:
    return _D.size()


def backend() -> str:
    """"mpi" under an MPI launch with several ranks, "single" otherwise."""
    return _D.backend()


def is_distributed() -> bool:
    return _D.size() > 1


def set_step(step: int) -> None:
    """Sets the step counter that collective errors and timeouts name."""
    _D.set_step(int(step))


def set_timeout(seconds: float) -> None:
    _D.set_timeout(float(seconds))


def barrier() -> None:
    _D.barrier()


def _contiguous_copy(array) -> np.ndarray:
    return np.array(array, copy=True, order="C")


def all_reduce(array, op: str = "average") -> np.ndarray:
    """The element-wise sum or average ("sum" | "average") of `array` over all ranks.

    Every rank passes an array of the same shape and dtype; returns a new array.
    """
    out = _contiguous_copy(array)
    _D.all_reduce(out, code_of(out.dtype), op, "graft.distributed.all_reduce")
    return out


def broadcast(array, root: int = 0) -> np.ndarray:
    """Rank `root`'s `array` on every rank, as a new array.

    Every rank passes an array of the same shape and dtype.
    """
    out = _contiguous_copy(array)
    _D.broadcast(out, code_of(out.dtype), int(root), "graft.distributed.broadcast")
    return out


def all_gather(array) -> np.ndarray:
    """Every rank's `array` concatenated along axis 0 in rank order (scalars become a vector)."""
    send = np.ascontiguousarray(array)
    shape = send.shape if send.ndim else (1,)
    recv = np.empty((shape[0] * size(),) + shape[1:], dtype=send.dtype)
    _D.all_gather(send, recv, code_of(send.dtype), "graft.distributed.all_gather")
    return recv


def reduce_scatter(array, op: str = "sum") -> np.ndarray:
    """Block `rank()` (along axis 0) of the sum or average of `array` over all ranks.

    `array.shape[0]` must be a multiple of `size()`.
    """
    send = np.ascontiguousarray(array)
    n = size()
    if send.ndim == 0 or send.shape[0] % n:
        raise ValueError(
            f"graft.distributed.reduce_scatter: axis 0 of shape {send.shape} is not a multiple "
            f"of the {n} ranks"
        )
    recv = np.empty((send.shape[0] // n,) + send.shape[1:], dtype=send.dtype)
    _D.reduce_scatter(send, recv, code_of(send.dtype), op, "graft.distributed.reduce_scatter")
    return recv


def abort(code: int = 1) -> None:
    """Ends this process with `code` and has the launcher end the other ranks (MPI_Abort)."""
    sys.stdout.flush()
    sys.stderr.flush()
    _D.abort(int(code))


def _abort_on_uncaught_exception(kind, value, traceback) -> None:
    # A rank that dies of an exception would otherwise leave the others waiting in their next
    # collective until the timeout; MPI_Abort ends them now.
    _previous_excepthook(kind, value, traceback)
    abort(1)


_previous_excepthook = sys.excepthook
if _D.launched_world_size() > 1:
    sys.excepthook = _abort_on_uncaught_exception


class DistributedSampler:
    """Indices 0..n-1 sharded by rank: each rank iterates over its own disjoint share.

    With `shuffle`, each epoch draws one permutation from (`seed`, epoch), the same on every rank;
    rank r takes positions r, r + size, r + 2 size, ... of it, so batch k of the ranks together
    is batch k of a single process with a batch size times larger. With `drop_last` (default) the
    tail that does not divide evenly (n % size indices) is left out so shards stay disjoint and
    equal; without it the tail is padded from the start of the permutation, so every index is
    seen and a few twice. All shards have the same length, so every rank runs the same number of
    steps (and collectives).
    """

    def __init__(
        self,
        n: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        size: int | None = None,
        drop_last: bool = True,
    ):
        self.n = int(n)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.rank = _D.rank() if rank is None else int(rank)
        self.size = _D.size() if size is None else int(size)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        if self.n < 0 or self.size < 1 or not 0 <= self.rank < self.size:
            raise ValueError(
                f"DistributedSampler: n={self.n}, rank={self.rank}, size={self.size} is invalid"
            )

    def set_epoch(self, epoch: int) -> None:
        """Selects the permutation of `epoch`; call it before iterating each epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.size
        return -(-self.n // self.size)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, as an int64 array."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        total = len(self) * self.size
        if total > self.n:
            order = np.resize(order, total)  # repeats the permutation from its start
        return order[self.rank : total : self.size].astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())
