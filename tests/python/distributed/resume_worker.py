"""Run by test_resume.py under `mpirun -np 2`: a data-parallel training loop as a user writes it
(a DistributedSampler over a dataset, shuffled per epoch; an MLP with training-mode Dropout
drawn from graft's seeded generator; AdamW with gradient clipping; a cosine learning-rate
schedule), which trains global steps [start, stop) and writes the final state of each rank.

    resume_worker.py OUT START STOP [--resume CKPT] [--save CKPT] [--zero-stage 0|1]

START > 0 needs --resume: the checkpoint written at that step by an earlier job, which restores
the parameters, optimizer state, step, learning rate and generator; the sampler's epoch and
position and the schedule's step follow from the session's step (the schedule is made before
the checkpoint is loaded, so that its base rate is the configured one). --save writes a checkpoint
after the last step. Each rank writes OUT/state.rank<r>.npz.
"""

import argparse
import json
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import graft
import graft.distributed as dist
from graft.lr_scheduler import CosineAnnealingLR
from graft.training import TrainingSession

SAMPLES, BATCH, TOTAL_STEPS = 203, 8, 30  # per-rank batch; 12 steps an epoch on 2 ranks
PARAMS = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def model(seed: int):
    rng = np.random.default_rng(seed)
    params = {"fc1.weight": rng.standard_normal((32, 6)) * 0.4, "fc1.bias": rng.standard_normal(32) * 0.1,
              "fc2.weight": rng.standard_normal((3, 32)) * 0.3, "fc2.bias": rng.standard_normal(3) * 0.1}
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in params.items()]
    inits += [numpy_helper.from_array(np.array(0.25, np.float32), "ratio"),
              numpy_helper.from_array(np.array(True), "training")]
    nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Dropout", ["r", "ratio", "training"], ["d", "mask"]),
             helper.make_node("Gemm", ["d", "fc2.weight", "fc2.bias"], ["y"], transB=1),
             helper.make_node("Sub", ["y", "target"], ["err"]),
             helper.make_node("Mul", ["err", "err"], ["sq"]),
             helper.make_node("ReduceMean", ["sq"], ["loss"], keepdims=0)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6]),
                                             helper.make_tensor_value_info("target", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 10
    return m


def dataset():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((SAMPLES, 6)).astype(np.float32)
    return x, np.tanh(x[:, :3] * 2 - x[:, 3:]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("start", type=int)
    parser.add_argument("stop", type=int)
    parser.add_argument("--resume")
    parser.add_argument("--save")
    parser.add_argument("--zero-stage", type=int, default=0)
    args = parser.parse_args()
    rank = dist.rank()
    graft.seed(1234)  # the Dropout masks of a fresh run; a resumed one takes the checkpoint's
    # A resumed job builds its session from other initial weights: the checkpoint must replace them.
    sess = TrainingSession(model(seed=rank + (100 if args.resume else 0)), loss="loss", params=PARAMS,
                           optimizer="adamw", lr=0.02, weight_decay=0.05, max_grad_norm=0.5, bucket_mb=1e-4,
                           zero_stage=args.zero_stage, intra_op_num_threads=1)
    # The checkpoint restores the current rate; the schedule continues from its state_dict, saved
    # beside the checkpoint as torch's is.
    schedule = CosineAnnealingLR(sess, T_max=TOTAL_STEPS, eta_min=0.001)
    if args.resume:
        sess.load_checkpoint(args.resume)
        with open(args.resume + ".schedule.json") as f:
            schedule.load_state_dict(json.load(f))
    assert sess.step == args.start, (sess.step, args.start)
    x, target = dataset()
    sampler = dist.DistributedSampler(SAMPLES, seed=11)
    steps_per_epoch = len(sampler) // BATCH
    for step in range(args.start, args.stop):
        epoch, position = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch)
        rows = sampler.indices()[position * BATCH:(position + 1) * BATCH]
        sess.train_step({"x": x[rows], "target": target[rows]})
        schedule.step()
    if args.save:
        sess.save_checkpoint(args.save)
        if rank == 0:
            with open(args.save + ".schedule.json", "w") as f:
                json.dump(schedule.state_dict(), f)
    np.savez(os.path.join(args.out, f"state.rank{rank}.npz"), **sess.state(),
             learning_rate=np.array(sess.learning_rate, np.float32), step=np.array(sess.step))


if __name__ == "__main__":
    sys.exit(main())
