"""graft's CUDA provider against PyTorch eager on one GPU: training steps and inference.

    PYTHONPATH=python python bench/gpu_bench.py [--steps 20] [--warmup 5] [--rounds 3]
    PYTHONPATH=python python bench/gpu_bench.py --smoke     # tiny shapes on the CPU: the plumbing only

Training (forward, backward and an SGD-momentum update, the loss read back to the host each step):
ResNet-50 at batch 32 on 3x224x224 images (1000 classes) and BERT-base at batch 8 on sequences of
128 tokens (2 labels). Inference: ResNet-50 at batch 1 and 32, the input coming from and the
logits going back to host memory. Each model is built in PyTorch with a fixed seed and exported to
ONNX; graft runs the exported model (TrainingSession / InferenceSession with providers
["CUDAExecutionProvider", "CPUExecutionProvider"]), PyTorch the same module from the same weights
on the same data. Each engine runs in a process of its own; the two step in alternating rounds.
Printed per case: each engine's median step time, samples per second, graft / PyTorch throughput
(above 1: graft is faster), and each process's peak GPU memory as NVML reports it (the memory
the process holds, CUDA context included, for both alike; "n/a" where NVML cannot see it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from workers import Worker, batchnorm_in_training_mode  # bench/ is the script's folder

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))
LR, MOMENTUM = 0.01, 0.9
ENGINES = ("graft", "torch")

# (model, batch, mode) cases; --smoke shrinks the models and shapes.
CASES = [("resnet50", 32, "train"), ("bert", 8, "train"), ("resnet50", 1, "infer"), ("resnet50", 32, "infer")]


def make_batches(name: str, batch: int, count: int, smoke: bool) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        if name == "resnet50":
            side = 64 if smoke else 224
            out.append({"x": rng.standard_normal((batch, 3, side, side), dtype=np.float32),
                        "labels": rng.integers(0, 1000, batch).astype(np.int64)})
        else:
            seq, vocab = (16, 1000) if smoke else (128, 30522)
            out.append({"x": rng.integers(0, vocab, (batch, seq)).astype(np.int64),
                        "labels": rng.integers(0, 2, batch).astype(np.int64)})
    return out


def build_torch(name: str, smoke: bool, with_loss: bool):
    import torch
    from torch import nn

    from torch_models import Bert, ResNet50

    torch.manual_seed(0)
    net = ResNet50() if name == "resnet50" else (
        Bert(vocab=1000, hidden=64, layers=2, heads=4, ff=128) if smoke else Bert())
    if not with_loss:
        return net

    class WithLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return nn.functional.cross_entropy(self.net(x), labels)

    return WithLoss()


def export(name: str, batch: dict[str, np.ndarray], path: str, smoke: bool, train: bool) -> None:
    import torch

    model = build_torch(name, smoke, with_loss=train)
    model.train(train)
    if train:
        args, names, outputs = (torch.from_numpy(batch["x"]), torch.from_numpy(batch["labels"])), ["x", "labels"], ["loss"]
    else:
        args, names, outputs = (torch.from_numpy(batch["x"]),), ["x"], ["logits"]
    torch.onnx.export(model, args, path, input_names=names, output_names=outputs, dynamo=True,
                      external_data=False, optimize=False, verbose=False)
    if train:
        batchnorm_in_training_mode(path)


class GpuMemory:
    """The most GPU memory NVML has seen this process hold; None when NVML cannot tell."""

    def __init__(self) -> None:
        self.peak: int | None = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("GRAFT_BENCH_GPU", "0")))
        except Exception:  # no NVML here (no driver, or the bindings are absent)
            self.nvml = None

    def sample(self) -> None:
        if self.nvml is None:
            return
        try:
            for p in self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle):
                if p.pid == os.getpid() and p.usedGpuMemory is not None:
                    self.peak = max(self.peak or 0, p.usedGpuMemory)
        except Exception:
            return


def worker(engine: str, name: str, batch: int, mode: str, path: str, count: int, smoke: bool) -> None:
    import json

    batches = make_batches(name, batch, count, smoke)
    device = "cpu" if smoke else "cuda"
    providers = ["CPUExecutionProvider"] if smoke else ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if engine == "torch":
        import torch

        model = build_torch(name, smoke, with_loss=mode == "train").to(device)
        if mode == "train":
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

            def step(b: dict[str, np.ndarray]) -> float:
                opt.zero_grad(set_to_none=True)
                loss = model(torch.from_numpy(b["x"]).to(device), torch.from_numpy(b["labels"]).to(device))
                loss.backward()
                opt.step()
                return float(loss.detach())
        else:
            model.eval()

            def step(b: dict[str, np.ndarray]) -> float:
                with torch.no_grad():
                    return float(model(torch.from_numpy(b["x"]).to(device)).cpu().numpy()[0, 0])
    else:
        import onnx

        import graft
        from graft.training import TrainingSession

        if mode == "train":
            m = onnx.load(path)
            stats = {i for n in m.graph.node if n.op_type == "BatchNormalization" for i in n.input[3:5]}
            params = [i.name for i in m.graph.initializer if i.data_type == onnx.TensorProto.FLOAT
                      and i.name not in stats]
            sess = TrainingSession(m, loss="loss", params=params, optimizer="sgd", lr=LR, momentum=MOMENTUM,
                                   providers=providers)

            def step(b: dict[str, np.ndarray]) -> float:
                return sess.train_step(b)
        else:
            sess = graft.InferenceSession(path, providers=providers)

            def step(b: dict[str, np.ndarray]) -> float:
                return float(sess.run(None, {"x": b["x"]})[0][0, 0])
    memory = GpuMemory()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        i = int(line.split()[1])
        t0 = time.perf_counter()
        value = step(batches[i])
        seconds = time.perf_counter() - t0
        memory.sample()
        print(json.dumps({"seconds": seconds, "value": value}), flush=True)
    print(json.dumps({"peak_bytes": memory.peak}), flush=True)


def bench(name: str, batch: int, mode: str, args: argparse.Namespace, folder: str) -> dict:
    path = os.path.join(folder, f"{name}_{mode}_{batch}.onnx")
    export(name, make_batches(name, batch, 1, args.smoke)[0], path, args.smoke, mode == "train")
    count = args.warmup + args.steps
    times: dict[str, list[float]] = {e: [] for e in ENGINES}
    first: dict[str, float] = {}
    peak: dict[str, int | None] = {e: None for e in ENGINES}
    for _ in range(args.rounds):
        workers = {e: Worker([os.path.abspath(__file__), "--worker", e, "--case", f"{name},{batch},{mode}",
                              "--onnx", path, "--count", str(count)] + (["--smoke"] if args.smoke else []))
                   for e in ENGINES}
        for i in range(count):
            for e, w in workers.items():
                r = w.send(f"step {i}")
                first.setdefault(e, r["value"])
                if i >= args.warmup:
                    times[e].append(r["seconds"])
        for e, w in workers.items():
            p = w.close()["peak_bytes"]
            if p is not None:
                peak[e] = max(peak[e] or 0, p)
    med = {e: statistics.median(v) for e, v in times.items()}
    return {"case": f"{name} {mode} batch {batch}", "ms": {e: v * 1e3 for e, v in med.items()},
            "per_s": {e: batch / v for e, v in med.items()}, "ratio": med["torch"] / med["graft"],
            "first": first, "peak": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="fresh pairs of processes per case")
    parser.add_argument("--cases", default="all", help="comma-separated indices into the case list, or all")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU (no GPU needed)")
    parser.add_argument("--worker", choices=ENGINES)
    parser.add_argument("--case")
    parser.add_argument("--onnx")
    parser.add_argument("--count", type=int)
    args = parser.parse_args()
    if args.worker:
        name, batch, mode = args.case.split(",")
        worker(args.worker, name, int(batch), mode, args.onnx, args.count, args.smoke)
        return

    import torch

    import graft

    if not args.smoke and not torch.cuda.is_available():
        sys.exit("gpu_bench: no CUDA device (run with --smoke to check the plumbing on the CPU)")
    if not args.smoke and "CUDAExecutionProvider" not in graft.get_available_providers():
        sys.exit(f"gpu_bench: graft has no usable CUDAExecutionProvider here ({graft.get_available_providers()})")
    where = "CPU (smoke run: tiny shapes)" if args.smoke else torch.cuda.get_device_name(0)
    print(f"device: {where}; graft {graft.__version__}, torch {torch.__version__}")
    print(f"{args.warmup} warm-up + {args.steps} timed steps per engine, alternating, in {args.rounds} rounds of "
          f"fresh processes; SGD lr {LR} momentum {MOMENTUM}")
    chosen = CASES if args.cases == "all" else [CASES[int(i)] for i in args.cases.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, batch, mode in chosen:
            r = bench(name, batch, mode, args, folder)
            rows.append(r)
            print(f"  {r['case']}: first value graft {r['first']['graft']:.6f}, torch {r['first']['torch']:.6f}",
                  flush=True)
    print()
    print("throughput ratio: graft / PyTorch samples per second (above 1: graft is faster)")
    print(f"{'case':<28}{'graft ms':>10}{'torch ms':>10}{'graft /s':>11}{'torch /s':>11}{'ratio':>8}"
          f"{'graft peak MiB':>16}{'torch peak MiB':>16}")
    for r in rows:
        mib = {e: "n/a" if r["peak"][e] is None else f"{r['peak'][e] / 2**20:.0f}" for e in ENGINES}
        print(f"{r['case']:<28}{r['ms']['graft']:10.2f}{r['ms']['torch']:10.2f}{r['per_s']['graft']:11.1f}"
              f"{r['per_s']['torch']:11.1f}{r['ratio']:8.2f}{mib['graft']:>16}{mib['torch']:>16}")


if __name__ == "__main__":
    main()
