"""graft.training.api.Module and the C++ training API's Module (through examples/cpp/finetune)
train data-parallel under mpirun: 2 ranks with half the batch each end with the parameters and
optimizer state of 1 process with the whole batch; rank 0 alone writes the checkpoint."""

import os
import re
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from graft.checkpoint import load_checkpoint
from graft.training import LossType, OptimType, generate_artifacts, write_dataset

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "training"))
from dp_common import mpirun, python_env, run_checked  # noqa: E402
from test_cpp_finetune import mlp  # noqa: E402  (64 -> 32 -> ReLU -> 10 logits)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FINETUNE = os.environ.get("GRAFT_FINETUNE", os.path.join(ROOT, "build", "examples", "graft_finetune"))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("module_dp")
    generate_artifacts(mlp(seed=5), loss=LossType.CrossEntropyLoss, optimizer=OptimType.AdamW,
                       artifact_directory=tmp / "artifacts")
    return tmp / "artifacts"


def assert_states_equal(got: dict, expected: dict, what: str) -> None:
    assert sorted(got) == sorted(expected), what
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-7, err_msg=f"{what}: {name}")


@pytest.mark.parametrize("transport", ["self,vader", "tcp,self"])
def test_python_module_two_ranks_match_one(artifacts, tmp_path, transport):
    worker = os.path.join(HERE, "module_dp_worker.py")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    run_checked([sys.executable, worker, str(artifacts), str(tmp_path / "one")], env=python_env())
    run_checked([*mpirun(2, transport), "-x", "PYTHONPATH", "-x", "OMP_NUM_THREADS", sys.executable, worker,
                 str(artifacts), str(tmp_path / "two")], env=python_env())
    expected = dict(np.load(tmp_path / "one" / "state.rank0.npz"))
    assert any(k.endswith(".adamw.m") for k in expected)  # the optimizer state is compared too
    for rank in range(2):
        assert_states_equal(dict(np.load(tmp_path / "two" / f"state.rank{rank}.npz")), expected, f"rank {rank}")
    tensors, step, _ = load_checkpoint(tmp_path / "two" / "checkpoint")
    assert step == 12
    assert_states_equal(tensors, expected, "checkpoint")


def test_cpp_module_two_ranks_match_one(artifacts, tmp_path):
    assert os.path.exists(FINETUNE), f"{FINETUNE} is missing: build it with `bash scripts/build.sh graft_finetune`"
    digits = load_digits()
    write_dataset(tmp_path / "train.bin", {"input": (digits.data[:640] / 16.0).astype(np.float32),
                                           "labels": digits.target[:640].astype(np.int64)})
    args = [str(artifacts), str(tmp_path / "train.bin")]
    flags = ["--epochs", "2", "--batch", "32", "--lr", "0.01"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run_checked([FINETUNE, *args, str(tmp_path / "one"), *flags], env=env)
    proc = run_checked([*mpirun(2), "-x", "OMP_NUM_THREADS", FINETUNE, *args, str(tmp_path / "two"), *flags], env=env)
    print(proc.stdout)
    assert "(16 on each of 2 ranks)" in proc.stdout
    assert len(re.findall(r"^epoch \d+/2", proc.stdout, re.M)) == 2  # rank 0 alone reports
    one, step_one, _ = load_checkpoint(tmp_path / "one" / "checkpoint")
    two, step_two, _ = load_checkpoint(tmp_path / "two" / "checkpoint")
    assert step_one == step_two == 40
    assert_states_equal(two, one, "C++ Module, 2 ranks")


def test_running_statistics_agree_across_ranks(tmp_path):
    """Each rank normalizes with its own batch's statistics (as DistributedDataParallel without
    SyncBatchNorm); the running statistics are averaged across ranks every step, so the ranks
    keep one model, parameters and statistics alike."""
    run_checked([*mpirun(2), "-x", "PYTHONPATH", "-x", "OMP_NUM_THREADS", sys.executable,
                 os.path.join(HERE, "bn_dp_worker.py"), str(tmp_path)], env=python_env())
    states = [dict(np.load(tmp_path / f"bn.rank{r}.npz")) for r in range(2)]
    assert sorted(states[0]) == sorted(states[1])
    for name in states[0]:
        np.testing.assert_array_equal(states[1][name], states[0][name], err_msg=name)
    assert not np.allclose(states[0]["bn.running_var"], 1.0)


def test_module_statistics_agree_across_ranks(tmp_path):
    """BatchNormalization running statistics under a data-parallel Module: each rank's node
    sees its half of the batch; the ranks average the new statistics, so both hold the mean of
    what the ONNX reference computes for each half."""
    from onnx.reference import ReferenceEvaluator
    from test_batch_norm_statistics import STATS, forward_only, model, with_values

    generate_artifacts(forward_only(model()), loss=LossType.CrossEntropyLoss, optimizer=OptimType.SGD,
                       artifact_directory=tmp_path / "artifacts")
    x = np.random.default_rng(3).standard_normal((16, 3, 6, 6)).astype(np.float32) * 2 + 1
    np.save(tmp_path / "x.npy", x)
    labels = np.arange(16, dtype=np.int64) % 5
    worker = os.path.join(HERE, "module_bn_worker.py")
    run_checked([*mpirun(2), "-x", "PYTHONPATH", "-x", "OMP_NUM_THREADS", sys.executable, worker,
                 str(tmp_path / "artifacts"), str(tmp_path), str(tmp_path / "x.npy")], env=python_env())
    ranks = [dict(np.load(tmp_path / f"state.rank{r}.npz")) for r in range(2)]
    initial = {}  # the reference from the initial values (those in the model)
    halves = [ReferenceEvaluator(with_values(model(reference=True), initial)).run(
        ["rm", "rv"], {"x": x[r * 8:(r + 1) * 8], "labels": labels[r * 8:(r + 1) * 8]}) for r in range(2)]
    for i, name in enumerate(STATS):
        want = (halves[0][i] + halves[1][i]) / 2
        for r in range(2):
            np.testing.assert_allclose(ranks[r][name], want, rtol=1e-5, atol=1e-6, err_msg=f"rank {r}: {name}")
