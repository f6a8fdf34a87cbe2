"""One rank of test_module_data_parallel.test_module_statistics_agree_across_ranks: one training
call of graft.training.api.Module over BatchNormalization artifacts, on this rank's half of a
batch; saves the rank's state."""

import sys

import numpy as np

import graft.distributed as dist
from graft.training.api import CheckpointState, Module

artifacts, out, x_path = sys.argv[1:4]
dist.init()
x = np.load(x_path)
half = len(x) // dist.size()
rows = slice(dist.rank() * half, (dist.rank() + 1) * half)
labels = np.arange(len(x), dtype=np.int64) % 5
state = CheckpointState.load_checkpoint(f"{artifacts}/checkpoint")
module = Module(f"{artifacts}/training_model.onnx", state, f"{artifacts}/eval_model.onnx")
assert module.data_parallel == (dist.size() > 1)
module(x[rows], labels[rows])
np.savez(f"{out}/state.rank{dist.rank()}.npz", **state.tensors)
