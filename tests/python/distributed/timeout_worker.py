"""Run by test_collectives.py under `mpirun -np 2` with a short GRAFT_COLLECTIVE_TIMEOUT_S: after
one good all-reduce, rank 1 stops taking part and rank 0's next collective must time out, naming
itself, the rank and the step, and exit with status 1.

argv[1]: "kill" (rank 1 SIGKILLs itself before a graft.distributed.all_reduce) or "hang" (rank 1
sleeps while rank 0 runs a graft InferenceSession with a com.graft.AllReduce node) or "raise"
(rank 0 raises an exception while rank 1 waits in an all-reduce: the job must end at once).
"""

import os
import signal
import sys
import time

import numpy as np
from onnx import TensorProto, helper

import graft
import graft.distributed as dist


def all_reduce_session():
    node = helper.make_node("AllReduce", ["g"], ["g_avg"], domain="com.graft",
                            reduction="average", name="grad_bucket0")
    graph = helper.make_graph(
        [node], "bucket", [helper.make_tensor_value_info("g", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("g_avg", TensorProto.FLOAT, [8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("com.graft", 1)])
    model.ir_version = 10
    return graft.InferenceSession(model.SerializeToString())


def main():
    mode = sys.argv[1]
    dist.init()
    rank = dist.rank()
    sess = all_reduce_session()
    dist.set_step(6)
    x = np.full(8, rank + 1, dtype=np.float32)
    np.testing.assert_allclose(dist.all_reduce(x, op="sum"), np.full(8, 3.0))
    dist.set_step(7)
    if mode == "raise":
        if rank == 0:
            raise RuntimeError("rank 0 fails outside a collective")
        dist.all_reduce(x)
        return 0
    if rank == 1:
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(120)
        return 0
    print(f"rank 0 waits in the step 7 collective ({mode})", flush=True)
    if mode == "kill":
        dist.all_reduce(x)
    else:
        sess.run(None, {"g": x})
    print("rank 0: the collective returned without its peer", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
