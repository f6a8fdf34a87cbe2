"""Data-parallel training: 2 ranks with batch B each end with the parameters of 1 process with
batch 2B, over shared memory and over TCP, with and without ZeRO-1 (optimizer state sharded);
the training step holds the bucketed AllReduce (and ZeRO's Broadcast) nodes;
checkpoints are written by rank 0, resume a 2-rank run bit for bit, and refuse another world
size."""

import itertools
import json
import os
import sys

import numpy as np
import onnx
import pytest

from graft.training import TrainingSession

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dp_common import BATCH, OPTIMIZERS, STEPS, global_batches, mlp, mpirun, python_env, run_checked  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _reference(name: str) -> dict[str, np.ndarray]:
    sess = TrainingSession(mlp(seed=0), loss="loss", **OPTIMIZERS[name])
    assert not sess.data_parallel and sess.world_size == 1
    for x, t in global_batches():
        sess.train_step({"x": x, "target": t})
    return sess.state()


def _reference_accumulated() -> dict[str, np.ndarray]:
    sess = TrainingSession(mlp(seed=0), loss="loss", **OPTIMIZERS["adamw"])
    for i, (x, t) in enumerate(global_batches()):
        sess.forward_backward({"x": x, "target": t})
        if i % 2 == 1:
            sess.optimizer_step()
            sess.lazy_reset_grad()
    return sess.state()


def _mpirun(script: str, transport: str, *args: str, overlap: str = "") -> None:
    run_checked([*mpirun(2, transport), "-x", "PYTHONPATH", "-x", "OMP_NUM_THREADS", "-x", "GRAFT_OVERLAP_COLLECTIVES",
                 sys.executable, os.path.join(HERE, script), *args], env=python_env(GRAFT_OVERLAP_COLLECTIVES=overlap))


# overlap "1": the all-reduce runs on the collective stream while backward goes on; "": the
# machine decides (on a 2-core machine, in order on the computing thread).
@pytest.mark.parametrize("transport,overlap", [("self,vader", ""), ("tcp,self", ""), ("self,vader", "1"),
                                               ("tcp,self", "1")])
def test_two_ranks_match_one_with_twice_the_batch(tmp_path, transport, overlap):
    _mpirun("dp_train.py", transport, str(tmp_path), overlap=overlap)
    for rank in range(2):
        counts = json.loads((tmp_path / f"sgd.zero0.rank{rank}.ops.json").read_text())
        assert counts["AllReduce"] >= STEPS * 2, counts  # several buckets per step (bucket_mb=1e-4)
        expected_waits = counts["AllReduce"] if overlap == "1" else 0
        if overlap == "":  # the machine decides: a stream only with a core to spare
            cores, threads = os.cpu_count(), 1
            expected_waits = counts["AllReduce"] if cores >= 2 * (threads + 1) else 0
        assert counts["AllReduceWait"] == expected_waits, counts
    params = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
    for name, zero in itertools.product(OPTIMIZERS, (0, 1)):
        tag = f"{name}.zero{zero}"
        expected = _reference(name)
        slots = set()
        for rank in range(2):
            got = np.load(tmp_path / f"{tag}.rank{rank}.npz")
            # ZeRO-1: every rank holds all parameters and its own share of the optimizer state.
            if zero:
                assert set(params) <= set(got.files) < set(expected), (tag, got.files)
                slots |= set(got.files) - set(params)
            else:
                assert sorted(got.files) == sorted(expected), tag
            for key in got.files:
                np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-7,
                                           err_msg=f"{tag}, rank {rank}, {key}")
            resumed = np.load(tmp_path / f"{tag}.resumed.rank{rank}.npz")
            assert sorted(resumed.files) == sorted(got.files)
            for key in got.files:
                np.testing.assert_array_equal(resumed[key], got[key], err_msg=f"{tag} resumed, rank {rank}, {key}")
        if zero:
            assert slots == set(expected) - set(params), tag

        # The training step shows its collectives: with buckets of 104 bytes (bucket_mb=1e-4),
        # the gradients (384, 64, 192 and 12 bytes) share at most one bucket.
        step = onnx.load(str(tmp_path / f"{tag}.step.onnx"))
        reduces = [n for n in step.graph.node if n.op_type == "AllReduce" and n.domain == "com.graft"]
        assert len(reduces) >= 3, [n.name for n in reduces]
        reduced = [o for n in reduces for o in n.output]
        assert sorted(reduced) == sorted(f"{p}_grad" for p in params)
        broadcasts = [n for n in step.graph.node if n.op_type == "Broadcast" and n.domain == "com.graft"]
        assert len(broadcasts) == (2 if zero else 0), tag
        assert sorted(o for n in broadcasts for o in n.output) == (sorted(f"{p}.new" for p in params) if zero else [])
        # The checkpoint holds the whole state (ZeRO: gathered on rank 0) and does not resume in
        # 1 process.
        sess = TrainingSession(mlp(), loss="loss", **OPTIMIZERS[name])
        with pytest.raises(Exception, match="world size"):
            sess.load_checkpoint(tmp_path / f"{tag}.ckpt")

    # forward_backward and optimizer_step: each rank accumulates its own gradients, the update
    # averages them.
    accumulated = _reference_accumulated()
    for rank, zero in itertools.product(range(2), (0, 1)):
        got = np.load(tmp_path / f"accumulate.zero{zero}.rank{rank}.npz")
        for key in params:
            np.testing.assert_allclose(got[key], accumulated[key], rtol=1e-5, atol=1e-7,
                                       err_msg=f"accumulated, zero {zero}, rank {rank}, {key}")


@pytest.mark.parametrize("name,zero", list(itertools.product(OPTIMIZERS, (0, 1))))
def test_one_process_keeps_copying_collectives_in_the_step(tmp_path, name, zero):
    """data_parallel=True in one process: AllReduce (and ZeRO's Broadcast) nodes copy, so
    training is unchanged; the first bucket's all-reduce runs before backward has reached the
    first layer."""
    path = tmp_path / "step.onnx"
    sess = TrainingSession(mlp(), loss="loss", data_parallel=True, bucket_mb=1e-4, zero_stage=zero,
                           optimized_model_filepath=path, **OPTIMIZERS[name])
    assert sess.data_parallel and sess.world_size == 1 and sess.zero_stage == zero
    for x, t in global_batches():
        sess.train_step({"x": x[:BATCH], "target": t[:BATCH]})
    plain = TrainingSession(mlp(), loss="loss", **OPTIMIZERS[name])
    for x, t in global_batches():
        plain.train_step({"x": x[:BATCH], "target": t[:BATCH]})
    assert sorted(sess.state()) == sorted(plain.state())
    for key, want in plain.state().items():
        # ZeRO clips with standard ops outside the fused update: equal up to rounding.
        np.testing.assert_allclose(sess.state()[key], want, rtol=1e-6 if zero else 0, atol=1e-8 if zero else 0,
                                   err_msg=key)

    nodes = list(onnx.load(str(path)).graph.node)
    reduces = [i for i, n in enumerate(nodes) if n.op_type == "AllReduce"]
    assert len(reduces) >= 3
    reduce_of = {o: n for n in nodes if n.op_type == "AllReduce" for o in n.output}
    local = dict(zip(reduce_of["fc1.weight_grad"].output, reduce_of["fc1.weight_grad"].input))["fc1.weight_grad"]
    first_layer_grad = next(i for i, n in enumerate(nodes) if local in n.output)
    assert reduces[0] < first_layer_grad, [n.name or n.op_type for n in nodes]
    update = next(i for i, n in enumerate(nodes) if n.op_type.endswith("Update"))
    assert reduces[-1] < update
    for i in reduces:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[i].attribute}
        assert attrs == {"reduction": b"average"}
    assert sum(n.op_type == "Broadcast" for n in nodes) == zero


def test_zero_needs_data_parallel():
    with pytest.raises(Exception, match="zero_stage 1 needs data-parallel"):
        TrainingSession(mlp(), loss="loss", data_parallel=False, zero_stage=1)
    with pytest.raises(Exception, match="zero_stage must be 0 or 1"):
        TrainingSession(mlp(), loss="loss", data_parallel=True, zero_stage=2)


def test_bucket_mb_must_be_positive():
    with pytest.raises(Exception, match="bucket_mb"):
        TrainingSession(mlp(), loss="loss", data_parallel=True, bucket_mb=0)


def test_digits_demo_on_two_ranks_trains_as_one_process(tmp_path):
    """examples/train_digits_distributed.py: the digits CNN (convolutions, pooling, cross-entropy)
    on 2 ranks with 16 images each ends where 1 process with 32 does, and learns the digits."""
    demo = os.path.join(HERE, "..", "..", "..", "examples", "train_digits_distributed.py")
    args = ["--epochs", "10", "--save-state"]
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    run_checked([sys.executable, demo, *args, "--out", str(one)], env=python_env())
    _mpirun(demo, "self,vader", *args, "--out", str(two))
    expected = np.load(one / "state.rank0.npz")
    for rank in range(2):
        got = np.load(two / f"state.rank{rank}.npz")
        for key in expected.files:
            drift = np.linalg.norm(got[key] - expected[key]) / np.linalg.norm(expected[key])
            assert drift < 1e-4, f"rank {rank}, {key}: relative difference {drift:.2e} after 440 steps"
    assert float((two / "accuracy.txt").read_text()) >= 0.95
    assert (two / "digits.ckpt").exists()
