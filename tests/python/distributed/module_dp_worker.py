"""Run by test_module_data_parallel.py under mpirun (or alone for the reference): trains
generate_artifacts' models with graft.training.api on scikit-learn's digits for STEPS steps of a
global batch of GLOBAL rows, rank r taking rows r*GLOBAL/N:(r+1)*GLOBAL/N of each, then writes
the checkpoint (rank 0 alone, via CheckpointState.save_checkpoint) and this rank's state.

    module_dp_worker.py ARTIFACT_DIR OUT_DIR
"""

import os
import sys

import numpy as np
from sklearn.datasets import load_digits

import graft.distributed as dist
from graft.training.api import CheckpointState, Module, Optimizer

STEPS, GLOBAL, LR = 12, 32, 0.01


def main(artifacts: str, out: str) -> None:
    rank, size = dist.rank(), dist.size()
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    state = CheckpointState.load_checkpoint(os.path.join(artifacts, "checkpoint"))
    if rank:  # rank 0's parameters must win: the others start from different ones
        state.tensors = {k: v + np.float32(0.5) for k, v in state.tensors.items()}
    module = Module(os.path.join(artifacts, "training_model.onnx"), state,
                    os.path.join(artifacts, "eval_model.onnx"))
    assert module.data_parallel == (size > 1)
    optimizer = Optimizer(os.path.join(artifacts, "optimizer_model.onnx"), module)
    optimizer.set_learning_rate(LR)
    share = GLOBAL // size
    for step in range(STEPS):
        begin = step * GLOBAL + rank * share
        module(x[begin:begin + share], y[begin:begin + share])
        optimizer.step()
        module.lazy_reset_grad()
    CheckpointState.save_checkpoint(state, os.path.join(out, "checkpoint"), include_optimizer_state=True)
    np.savez(os.path.join(out, f"state.rank{rank}.npz"), **state.tensors)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
