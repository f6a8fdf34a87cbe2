"""Run by test_checkpoint_failure.py under mpirun: every rank trains one data-parallel step, then
asks for a checkpoint in a folder where rank 0 cannot write (argv[1]), through TrainingSession
and through the on-device-training CheckpointState. Each rank writes what it got to
argv[2]/rank<r>.json, then all ranks take one more data-parallel step: a rank left waiting for a
peer would hang there."""

import json
import sys

import numpy as np

from graft import distributed as dist
from graft.training import TrainingSession
from graft.training.api import CheckpointState

from dp_common import BATCH, global_batches, mlp

folder, out = sys.argv[1], sys.argv[2]
rank = dist.rank()
got = {}
x, target = next(global_batches())
feeds = {"x": x[rank * BATCH:(rank + 1) * BATCH], "target": target[rank * BATCH:(rank + 1) * BATCH]}
sess = TrainingSession(mlp(), loss="loss", optimizer="sgd", lr=0.05)
sess.train_step(feeds)
for what, save in (("TrainingSession", lambda: sess.save_checkpoint(f"{folder}/session.ckpt")),
                   ("CheckpointState", lambda: CheckpointState.save_checkpoint(
                       CheckpointState({"w": np.ones(3, np.float32)}), f"{folder}/state.ckpt"))):
    try:
        save()
        got[what] = "saved"
    except Exception as e:  # the test compares what each rank got
        got[what] = f"{type(e).__name__}: {e}"
sess.train_step(feeds)
got["trained on"] = True
with open(f"{out}/rank{rank}.json", "w") as f:
    json.dump(got, f)
