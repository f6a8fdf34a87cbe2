"""Run by test_module_data_parallel.py under mpirun: TrainingSession on the BatchNormalization
model of tests/python/training/test_batch_norm_statistics.py, each rank on batches of its own,
then writes this rank's state to <out>/bn.rank<r>.npz."""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "training"))

import graft.distributed as dist  # noqa: E402
from graft.training import TrainingSession  # noqa: E402
from test_batch_norm_statistics import batches, model  # noqa: E402


def main(out: str) -> None:
    rank = dist.rank()
    sess = TrainingSession(model(), loss="loss", optimizer="sgd", lr=0.1, momentum=0.9)
    assert sess.data_parallel and sess.running_statistics() == ["bn.running_mean", "bn.running_var"]
    data = batches(4)
    for feeds in data[rank::2] * 2:  # each rank its own batches, so the local statistics differ
        sess.train_step(feeds)
    np.savez(os.path.join(out, f"bn.rank{rank}.npz"), **sess.state())


if __name__ == "__main__":
    main(sys.argv[1])
