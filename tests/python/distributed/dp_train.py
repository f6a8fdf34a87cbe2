"""Run under `mpirun -np 2`: trains the MLP of dp_common data-parallel for each optimizer, without
and with ZeRO-1 (<tag> = <optimizer>.zero<0|1>), rank r on rows r*B:(r+1)*B of every global
batch, and writes each rank's final state to <out>/<tag>.rank<r>.npz. Rank 1 builds its model from other initial weights, which the
session's broadcast of rank 0's state must replace. Also writes rank 0's training-step model
(<out>/<tag>.step.onnx) and the checkpoint all ranks save after 10 steps (<out>/<tag>.ckpt,
written by rank 0), from which a fresh session resumes and trains the last 10 steps again
(<out>/<tag>.resumed.rank<r>.npz). Last, the split step (forward_backward twice, then
optimizer_step) writes <out>/accumulate.zero<0|1>.rank<r>.npz."""

import itertools
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import graft  # noqa: E402
import graft.distributed as dist  # noqa: E402
from dp_common import BATCH, OPTIMIZERS, STEPS, global_batches, mlp  # noqa: E402
from graft.training import TrainingSession  # noqa: E402


def main(out: str) -> None:
    dist.init()
    rank, size = dist.rank(), dist.size()
    assert size == 2, f"expected 2 ranks, got {size}"
    # Sessions that differ between ranks fail on every rank before exchanging any state.
    try:
        TrainingSession(mlp(), loss="loss", params=["fc1.weight"] if rank else None)
        raise AssertionError("ranks training different parameters were not refused")
    except graft.InvalidArgument as e:
        assert "builds a different training step than rank 0" in str(e), e
    for (name, kwargs), zero in itertools.product(OPTIMIZERS.items(), (0, 1)):
        tag = f"{name}.zero{zero}"
        step_model = os.path.join(out, f"{tag}.step.onnx") if rank == 0 else None
        sess = TrainingSession(mlp(seed=rank), loss="loss", bucket_mb=1e-4, zero_stage=zero,
                               optimized_model_filepath=step_model, enable_profiling=True,
                               profile_file_prefix=os.path.join(out, f"{tag}.rank{rank}.profile"), **kwargs)
        assert sess.data_parallel and sess.world_size == 2 and sess.zero_stage == zero
        checkpoint = os.path.join(out, f"{tag}.ckpt")
        for i, (x, t) in enumerate(global_batches()):
            if i == STEPS // 2:
                sess.save_checkpoint(checkpoint)
            sess.train_step({"x": x[rank * BATCH:(rank + 1) * BATCH], "target": t[rank * BATCH:(rank + 1) * BATCH]})
        np.savez(os.path.join(out, f"{tag}.rank{rank}.npz"), **sess.state())
        # Where the all-reduce ran on the collective stream, the executor waited for each bucket
        # before its first reader: the trace holds one AllReduceWait per AllReduce node run.
        with open(sess.end_profiling()) as f:
            events = json.load(f)
        ops = [e["args"]["op_name"] for e in events]
        with open(os.path.join(out, f"{tag}.rank{rank}.ops.json"), "w") as f:
            json.dump({"AllReduce": ops.count("AllReduce"), "AllReduceWait": ops.count("AllReduceWait")}, f)
        # A fresh session (other initial weights again) resumed from the checkpoint of step 10
        # ends where the uninterrupted one did.
        resumed = TrainingSession(mlp(seed=rank + 7), loss="loss", zero_stage=zero, **kwargs)
        resumed.load_checkpoint(checkpoint)
        assert resumed.step == STEPS // 2
        for i, (x, t) in enumerate(global_batches()):
            if i >= STEPS // 2:
                resumed.train_step({"x": x[rank * BATCH:(rank + 1) * BATCH],
                                    "target": t[rank * BATCH:(rank + 1) * BATCH]})
        np.savez(os.path.join(out, f"{tag}.resumed.rank{rank}.npz"), **resumed.state())
    # The split step: gradients of 2 micro-batches accumulated per rank, then averaged across
    # ranks by the update (<out>/accumulate.rank<r>.npz).
    for zero in (0, 1):
        sess = TrainingSession(mlp(seed=rank), loss="loss", zero_stage=zero, **OPTIMIZERS["adamw"])
        for i, (x, t) in enumerate(global_batches()):
            sess.forward_backward({"x": x[rank * BATCH:(rank + 1) * BATCH], "target": t[rank * BATCH:(rank + 1) * BATCH]})
            if i % 2 == 1:
                sess.optimizer_step()
                sess.lazy_reset_grad()
        np.savez(os.path.join(out, f"accumulate.zero{zero}.rank{rank}.npz"), **sess.state())
    dist.barrier()


if __name__ == "__main__":
    main(sys.argv[1])
