"""Training-step time and peak memory of graft against PyTorch eager on the CPU.

    PYTHONPATH=python python bench/train_bench.py [--models mlp,resnet18,transformer] [--steps 20]
                                                  [--threads N] [--pairs 3]

Each model is built in PyTorch with a fixed seed and exported to ONNX with its loss; graft trains
the exported model (TrainingSession: forward, backward, SGD-momentum update), PyTorch trains the
same module from the same initial weights on the same batches. graft's onnxruntime-style API
("graft-api": generate_artifacts' models run by CheckpointState, Module and Optimizer) trains the
same network, exported without its loss, with the same loss and update. Each framework runs in a process
of its own that loads only that framework; the two step in turn (so load on the machine hits
both alike) with the same number of threads. --pairs such pairs of fresh processes run one after
the other, and the medians pool their steps. Printed: each pair's medians, the pooled median
step time of each framework, the ratio graft / PyTorch (below 1: graft is faster), and the peak
resident memory of each framework (the largest peak RSS of its processes, and that process's
growth over its RSS before the first step).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from machine import cpu_name  # bench/ is the script's folder
from workers import Worker, batchnorm_in_training_mode, status_kib

HERE = os.path.dirname(os.path.abspath(__file__))
LR, MOMENTUM = 0.01, 0.9


BATCH = {"mlp": 64, "resnet18": 16, "transformer": 8}


def make_batches(name: str, count: int, batch: int | None = None) -> list[dict[str, np.ndarray]]:
    """`count` random batches of `batch` samples (default: the benchmark's BATCH)."""
    if name not in BATCH:
        raise ValueError(f"unknown model {name}")
    n = batch or BATCH[name]
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        if name == "mlp":
            out.append({"x": rng.standard_normal((n, 784), dtype=np.float32),
                        "labels": rng.integers(0, 10, n).astype(np.int64)})
        elif name == "resnet18":
            out.append({"x": rng.standard_normal((n, 3, 64, 64), dtype=np.float32),
                        "labels": rng.integers(0, 1000, n).astype(np.int64)})
        else:
            out.append({"x": rng.standard_normal((n, 128, 256), dtype=np.float32),
                        "labels": rng.integers(0, 10, n).astype(np.int64)})
    return out


def build_torch(name: str):
    import torch
    from torch import nn

    sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))
    from torch_models import ResNet18

    torch.manual_seed(0)
    if name == "mlp":
        net = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    elif name == "resnet18":
        net = ResNet18()
    elif name == "transformer":
        layer = nn.TransformerEncoderLayer(256, 4, dim_feedforward=1024, dropout=0.0, batch_first=True)

        class Encoder(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.encoder = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
                self.head = nn.Linear(256, 10)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.head(self.encoder(x).mean(dim=1))

        net = Encoder()
    else:
        raise ValueError(f"unknown model {name}")

    class WithLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return nn.functional.cross_entropy(self.net(x), labels)

    model = WithLoss()
    model.train()
    return model


def export(model, batch: dict[str, np.ndarray], path: str, with_loss: bool = True) -> None:
    """The module with its loss (inputs x and labels, output loss) or, with_loss=False, its network
    alone (input x, output logits)."""
    import torch

    if with_loss:
        args = (torch.from_numpy(batch["x"]), torch.from_numpy(batch["labels"]))
        names, outputs = ["x", "labels"], ["loss"]
    else:
        model, args, names, outputs = model.net, (torch.from_numpy(batch["x"]),), ["x"], ["logits"]
    torch.onnx.export(model, args, path, input_names=names, output_names=outputs, dynamo=True,
                      external_data=False, optimize=False, verbose=False)
    batchnorm_in_training_mode(path)


class TorchStep:
    def __init__(self, model) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def __call__(self, batch: dict[str, np.ndarray]) -> float:
        torch = self.torch
        self.opt.zero_grad(set_to_none=True)
        loss = self.model(torch.from_numpy(batch["x"]), torch.from_numpy(batch["labels"]))
        loss.backward()
        self.opt.step()
        return float(loss.detach())


class GraftStep:
    def __init__(self, path: str, threads: int) -> None:
        import onnx

        from graft.training import TrainingSession

        model = onnx.load(path)
        # The trainable parameters are PyTorch's: every float initializer but BatchNorm's running
        # statistics, which PyTorch keeps as buffers.
        stats = {i for n in model.graph.node if n.op_type == "BatchNormalization" for i in n.input[3:5]}
        params = [i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT
                  and i.name not in stats]
        self.sess = TrainingSession(model, loss="loss", params=params, optimizer="sgd", lr=LR, momentum=MOMENTUM,
                                    intra_op_num_threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> float:
        return self.sess.train_step(batch)


class GraftApiStep:
    """The onnxruntime-style training API: generate_artifacts (cross-entropy, SGD-momentum), then
    Module and Optimizer steps."""

    def __init__(self, path: str, threads: int) -> None:
        import onnx

        from graft.training import LossType, OptimType, generate_artifacts
        from graft.training.api import CheckpointState, Module, Optimizer

        folder = tempfile.mkdtemp(prefix="graft_api_bench_")
        generate_artifacts(onnx.load(path), loss=LossType.CrossEntropyLoss, optimizer=OptimType.SGD,
                           artifact_directory=folder, momentum=MOMENTUM)
        self.state = CheckpointState.load_checkpoint(os.path.join(folder, "checkpoint"))
        self.module = Module(os.path.join(folder, "training_model.onnx"), self.state)
        self.optimizer = Optimizer(os.path.join(folder, "optimizer_model.onnx"), self.module)
        self.optimizer.set_learning_rate(LR)

    def __call__(self, batch: dict[str, np.ndarray]) -> float:
        loss = float(self.module(batch["x"], batch["labels"]))
        self.optimizer.step()
        self.module.lazy_reset_grad()
        return loss


FRAMEWORKS = ("graft", "graft-api", "torch")


def step_worker(framework: str, name: str, path: str, steps: int, threads: int) -> None:
    """One framework in a process of its own: builds its step, then runs one step per "step"
    line on stdin and answers with the step's time and loss; "quit" answers with its memory."""
    batches = make_batches(name, steps)
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        step = TorchStep(build_torch(name))
    elif framework == "graft-api":
        step = GraftApiStep(path.replace(".onnx", ".logits.onnx"), threads)
    else:
        step = GraftStep(path, threads)
    before = status_kib("VmRSS")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        i = int(line.split()[1])
        t0 = time.perf_counter()
        loss = step(batches[i])
        print(json.dumps({"seconds": time.perf_counter() - t0, "loss": loss}), flush=True)
    peak = status_kib("VmHWM")
    print(json.dumps({"peak_kib": peak, "growth_kib": peak - before}), flush=True)


def bench(name: str, steps: int, warmup: int, threads: int, pairs: int, folder: str) -> dict:
    path = os.path.join(folder, f"{name}.onnx")
    export(build_torch(name), make_batches(name, 1)[0], path)
    export(build_torch(name), make_batches(name, 1)[0], path.replace(".onnx", ".logits.onnx"), with_loss=False)
    # Each framework runs in a process of its own (as users run them: no shared OpenMP pool, BLAS
    # or allocator), the two stepping in turn. A process's speed on a shared machine depends on
    # where it lands (this VM has shown whole processes 30-40 % slower than the next), so `pairs`
    # fresh pairs of processes run one after the other and the medians pool all their steps.
    times: dict[str, list[float]] = {fw: [] for fw in FRAMEWORKS}
    per_pair: dict[str, list[float]] = {fw: [] for fw in FRAMEWORKS}
    first, last, mem = {}, {}, {}
    for pair in range(pairs):
        workers = {fw: Worker([os.path.abspath(__file__), "--worker", fw, "--models", name, "--onnx", path,
                               "--steps", str(warmup + steps), "--threads", str(threads)],
                              {"OMP_NUM_THREADS": str(threads)}) for fw in FRAMEWORKS}
        pair_times: dict[str, list[float]] = {fw: [] for fw in FRAMEWORKS}
        for i in range(warmup + steps):
            for fw, worker in workers.items():
                r = worker.send(f"step {i}")
                if pair == 0:
                    if i == 0:
                        first[fw] = r["loss"]
                    last[fw] = r["loss"]
                if i >= warmup:
                    pair_times[fw].append(r["seconds"])
        for fw, worker in workers.items():
            m = worker.close()
            # The largest peak of any pair: the figure a user would have to provision for.
            if fw not in mem or m["peak_kib"] > mem[fw]["peak_kib"]:
                mem[fw] = m
            times[fw] += pair_times[fw]
            per_pair[fw].append(statistics.median(pair_times[fw]) * 1e3)
    med = {fw: statistics.median(v) for fw, v in times.items()}
    return {"model": name, "ms": {fw: v * 1e3 for fw, v in med.items()},
            "ratio": {fw: med[fw] / med["torch"] for fw in FRAMEWORKS}, "first_loss": first, "last_loss": last,
            "mem": mem, "per_pair": per_pair}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mlp,resnet18,transformer")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pairs", type=int, default=3, help="fresh pairs of processes per model, one after another")
    parser.add_argument("--worker", choices=FRAMEWORKS)
    parser.add_argument("--onnx")
    args = parser.parse_args()
    if args.worker:
        step_worker(args.worker, args.models, args.onnx, args.steps, args.threads)
        return

    import onnxruntime  # noqa: F401  (version line only)
    import torch

    import graft

    torch.set_num_threads(args.threads)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; threads per framework: {args.threads}")
    print(f"graft {graft.__version__}, torch {torch.__version__}, numpy {np.__version__}")
    print(f"steps: {args.warmup} warm-up + {args.steps} timed per framework, alternating between one process per "
          f"framework, in {args.pairs} pairs of processes; SGD lr {LR} momentum {MOMENTUM}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            r = bench(name, args.steps, args.warmup, args.threads, args.pairs, folder)
            rows.append(r)
            print(f"  {name}: median of each pair of processes, " + ", ".join(
                f"{fw} {' / '.join(f'{v:.2f}' for v in r['per_pair'][fw])} ms" for fw in FRAMEWORKS), flush=True)
            for which in ("first", "last"):
                t = r[f"{which}_loss"]["torch"]
                print(f"  {name}: {which}-step loss torch {t:.6f}, " + ", ".join(
                    f"{fw} {r[f'{which}_loss'][fw]:.6f} (rel. diff {abs(r[f'{which}_loss'][fw] - t) / abs(t):.1e})"
                    for fw in FRAMEWORKS if fw != "torch"), flush=True)
    print()
    print("ratio: step time / PyTorch's (below 1: faster); graft = TrainingSession, graft-api = Module + Optimizer")
    print(f"{'model':<12} " + " ".join(f"{fw + ' ms':>13}" for fw in FRAMEWORKS) + " " +
          " ".join(f"{fw + ' ratio':>16}" for fw in FRAMEWORKS if fw != "torch") + " " +
          " ".join(f"{fw + ' peak MiB':>19}" for fw in FRAMEWORKS))
    for r in rows:
        print(f"{r['model']:<12} " + " ".join(f"{r['ms'][fw]:13.2f}" for fw in FRAMEWORKS) + " " +
              " ".join(f"{r['ratio'][fw]:16.2f}" for fw in FRAMEWORKS if fw != "torch") + " " +
              " ".join(f"{r['mem'][fw]['peak_kib'] / 1024:19.1f}" for fw in FRAMEWORKS))


if __name__ == "__main__":
    main()
