"""graft.distributed over MPI: collectives against NumPy on 2 ranks (shared memory and TCP), and
the timeout that turns a vanished peer into an error and a non-zero exit instead of a hang.

The ranks are `mpirun -np 2` subprocesses running the *_worker.py scripts next to this file."""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import graft.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.abspath(os.path.join(HERE, "..", "..", "..", "python"))
TIMEOUT_S = 5


def _mpirun(*args, env_extra=None, timeout=60, ranks=2):
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        print("mpirun not found: install openmpi-bin to run the MPI collective tests")
        pytest.skip("mpirun not found (openmpi-bin)")
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env.update(env_extra or {})
    cmd = [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", str(ranks), *args]
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True,
                            timeout=timeout)
    return result, time.monotonic() - start


@pytest.mark.parametrize("transport", ["vader,self", "tcp,self"])
def test_collectives_match_numpy(transport):
    result, _ = _mpirun("--mca", "btl", transport, sys.executable, "collectives_worker.py")
    assert result.returncode == 0, result.stdout + result.stderr
    for rank in range(2):
        assert f"collectives ok on rank {rank} of 2" in result.stdout, result.stdout + result.stderr


def test_collectives_match_numpy_on_three_ranks():
    # Three ranks: an average is not a division by a power of two (the AllReduce node packs
    # floats already divided by the ranks and sums them).
    result, _ = _mpirun(sys.executable, "collectives_worker.py", ranks=3, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for rank in range(3):
        assert f"collectives ok on rank {rank} of 3" in result.stdout, result.stdout + result.stderr


def test_killed_peer_times_out():
    # A launcher notices a killed local rank and stops the job itself; with recovery enabled it
    # does not (like a peer lost on another node), so rank 0's own timeout has to end it. Each
    # rank reports its exit status through the shell, since mpirun's reflects only the launcher.
    script = (f'"{sys.executable}" timeout_worker.py kill; '
              'echo "rank $OMPI_COMM_WORLD_RANK exit $?"')
    result, elapsed = _mpirun("--mca", "orte_enable_recovery", "1", "sh", "-c", script,
                              env_extra={"GRAFT_COLLECTIVE_TIMEOUT_S": str(TIMEOUT_S)},
                              timeout=TIMEOUT_S + 30)
    output = result.stdout + result.stderr
    assert "rank 1 exit 137" in result.stdout, output
    assert "rank 0 exit 1" in result.stdout, output
    assert "returned without its peer" not in output
    assert elapsed < TIMEOUT_S + 30
    assert ("graft.distributed: all_reduce (graft.distributed.all_reduce) of 8 float elements on "
            "rank 0 of 2 at step 7 timed out after 5 s waiting for peer rank 1") in result.stderr, \
        output


# overlap "1": the node's all-reduce runs on the collective stream, and times out there.
@pytest.mark.parametrize("overlap", ["0", "1"])
def test_hung_peer_times_out_in_graph_node(overlap):
    result, elapsed = _mpirun(sys.executable, "timeout_worker.py", "hang",
                              env_extra={"GRAFT_COLLECTIVE_TIMEOUT_S": str(TIMEOUT_S),
                                         "GRAFT_OVERLAP_COLLECTIVES": overlap},
                              timeout=TIMEOUT_S + 30)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert elapsed < TIMEOUT_S + 30
    assert ("all_reduce ([com.graft.AllReduce] node 'grad_bucket0') of 8 float elements on rank 0 "
            "of 2 at step 7 timed out after 5 s waiting for peer rank 1") in result.stderr, output


def test_uncaught_exception_aborts_the_job():
    # The peer waits in an all-reduce with a long timeout; the failing rank's MPI_Abort ends it.
    result, elapsed = _mpirun(sys.executable, "timeout_worker.py", "raise",
                              env_extra={"GRAFT_COLLECTIVE_TIMEOUT_S": "120"}, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "RuntimeError: rank 0 fails outside a collective" in result.stderr, output
    assert elapsed < 30


def test_single_process_without_mpirun():
    assert dist.backend() == "single"
    assert (dist.rank(), dist.size(), dist.is_distributed()) == (0, 1, False)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(dist.all_reduce(x), x)
    np.testing.assert_array_equal(dist.broadcast(x), x)
    np.testing.assert_array_equal(dist.all_gather(x), x)
    np.testing.assert_array_equal(dist.reduce_scatter(x, op="average"), x)
    dist.barrier()
    with pytest.raises(ValueError, match="reduction 'max'"):
        dist.all_reduce(x, op="max")
    with pytest.raises(ValueError, match="cannot reduce elements of type bool"):
        dist.all_reduce(np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="root 1 is not a rank of 1"):
        dist.broadcast(x, root=1)
    with pytest.raises(ValueError, match="positive number"):
        dist.set_timeout(0)


def test_sampler_shards_are_disjoint_and_follow_the_epoch():
    n, size = 103, 4
    samplers = [dist.DistributedSampler(n, seed=3, rank=r, size=size) for r in range(size)]
    for epoch in range(2):
        for s in samplers:
            s.set_epoch(epoch)
        shards = [s.indices() for s in samplers]
        assert all(len(shard) == n // size == len(s) for shard, s in zip(shards, samplers))
        merged = np.concatenate(shards)
        assert len(np.unique(merged)) == len(merged)  # disjoint
        # Positions r, r + size, ... of one permutation: together they are its first rows.
        order = np.random.default_rng([3, epoch]).permutation(n)
        np.testing.assert_array_equal(np.stack(shards, axis=1).ravel(), order[: n // size * size])
    epoch0 = dist.DistributedSampler(n, seed=3, rank=0, size=size).indices()
    assert list(samplers[0].indices()) != list(epoch0)
    padded = [dist.DistributedSampler(10, shuffle=False, rank=r, size=4, drop_last=False)
              for r in range(4)]
    assert [list(s) for s in padded] == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
