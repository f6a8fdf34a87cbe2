"""Resuming a 2-rank data-parallel run from a checkpoint in a new job reproduces the uninterrupted
run bit for bit: parameters, optimizer state (ZeRO-1's shards too), step and learning rate,
with Dropout drawing from the generator the checkpoint restores, a per-epoch shuffled
DistributedSampler resumed mid-epoch and a cosine schedule (resume_worker.py)."""

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from dp_common import mpirun, python_env, run_checked  # noqa: E402

K, M = 17, 13  # resumed mid-epoch: 12 steps an epoch


@pytest.mark.parametrize("zero_stage", [0, 1])
def test_resumed_job_ends_bit_for_bit_where_the_uninterrupted_one_does(tmp_path, zero_stage):
    def job(out: str, *args: str) -> None:
        os.makedirs(tmp_path / out)
        run_checked(mpirun(2) + ["-x", "PYTHONPATH", "-x", "OMP_NUM_THREADS", sys.executable,
                                 os.path.join(HERE, "resume_worker.py"), str(tmp_path / out), *args,
                                 "--zero-stage", str(zero_stage)], env=python_env(), timeout=240)

    checkpoint = str(tmp_path / "step17.ckpt")
    job("uninterrupted", "0", str(K + M))
    job("first", "0", str(K), "--save", checkpoint)
    job("resumed", str(K), str(K + M), "--resume", checkpoint)
    for rank in range(2):
        want = np.load(tmp_path / "uninterrupted" / f"state.rank{rank}.npz")
        got = np.load(tmp_path / "resumed" / f"state.rank{rank}.npz")
        assert sorted(got.files) == sorted(want.files)
        assert int(got["step"]) == K + M
        for key in want.files:
            assert np.array_equal(got[key], want[key]), f"rank {rank}, {key}: max difference " \
                f"{np.max(np.abs(got[key].astype(np.float64) - want[key])):.3g}"
        # The first job stopped elsewhere: the comparison is not between equal starts.
        first = np.load(tmp_path / "first" / f"state.rank{rank}.npz")
        assert not np.array_equal(first["fc1.weight"], want["fc1.weight"])
