"""graft data-parallel demo: the digits CNN of train_digits.py, trained across processes.

    mpirun -np 2 python examples/train_digits_distributed.py   # 2 ranks (--hostfile for nodes)
    python examples/train_digits_distributed.py                # 1 process, the same steps

Every step trains on a global batch of 32 images; graft.distributed.DistributedSampler gives each
of the N ranks its 32/N of them. Under mpirun TrainingSession trains data-parallel by itself: it
broadcasts rank 0's initial weights, averages the gradients with AllReduce nodes inside the
training graph, and only rank 0 writes the checkpoint. The run ends with the weights of the
single-process run, up to float rounding. Rank 0 prints progress and the test accuracy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch  # before graft, so that torch loads its own NCCL
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import graft  # noqa: E402
import graft.distributed as dist  # noqa: E402
from graft.training import TrainingSession  # noqa: E402
from train_digits import DigitsCNN, WithLoss, export, save_inference_model  # noqa: E402

GLOBAL_BATCH = 32


def run(epochs: int, lr: float, momentum: float, out: str | None = None) -> dict:
    """Trains on this rank's shards. Returns the trained state, and on rank 0 the test accuracy;
    with `out`, writes the checkpoint <out>/digits.ckpt."""
    dist.init()
    rank, size = dist.rank(), dist.size()
    if GLOBAL_BATCH % size:
        raise SystemExit(f"the global batch of {GLOBAL_BATCH} does not split across {size} ranks")
    batch = GLOBAL_BATCH // size
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)

    torch.manual_seed(0)
    net = DigitsCNN()
    with tempfile.TemporaryDirectory() as tmp:
        model = export(WithLoss(net), (torch.tensor(x_train[:batch]), torch.tensor(y_train[:batch])),
                       os.path.join(tmp, "train.onnx"), ["x", "labels"], ["loss"])
    sess = TrainingSession(model, loss="loss", optimizer="sgd", lr=lr, momentum=momentum)
    sampler = dist.DistributedSampler(len(x_train), seed=0)
    steps = len(sampler) // batch
    if rank == 0:
        print(f"{size} rank(s), data parallel: {sess.data_parallel}; {steps} steps per epoch of "
              f"{GLOBAL_BATCH} images ({batch} per rank)")
    start = time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        shard = sampler.indices()
        losses = [sess.train_step({"x": x_train[shard[k * batch:(k + 1) * batch]],
                                   "labels": y_train[shard[k * batch:(k + 1) * batch]]}) for k in range(steps)]
        # Each rank's loss is over its own shard; their average is the global batch's.
        mean = float(dist.all_reduce(np.array(np.mean(losses))))
        if rank == 0:
            print(f"epoch {epoch + 1}/{epochs}: mean loss {mean:.4f} ({time.perf_counter() - start:.1f}s)")
    if out:
        sess.save_checkpoint(os.path.join(out, "digits.ckpt"))
    figures = {"state": sess.state()}
    if rank == 0:
        figures["accuracy"] = accuracy(sess.state(), net, x_test, y_test)
        print(f"test accuracy: {figures['accuracy']:.4f}")
    return figures


def accuracy(trained: dict, net: torch.nn.Module, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of the trained weights, run by graft as an inference model."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_inference_model(net, trained, x_test[:4], tmp)
        logits = graft.InferenceSession(path).run(None, {"x": x_test})[0]
    return float((logits.argmax(1) == y_test).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--out", help="folder for the checkpoint and, with --save-state, the final state")
    parser.add_argument("--save-state", action="store_true", help="write <out>/state.rank<r>.npz")
    args = parser.parse_args()
    figures = run(args.epochs, args.lr, args.momentum, args.out)
    if args.out and args.save_state:
        np.savez(os.path.join(args.out, f"state.rank{dist.rank()}.npz"), **figures["state"])
        if "accuracy" in figures:
            with open(os.path.join(args.out, "accuracy.txt"), "w") as f:
                f.write(f"{figures['accuracy']}\n")


if __name__ == "__main__":
    main()
