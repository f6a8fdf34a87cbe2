"""Data-parallel scaling of graft's training step: 1 rank against 2 ranks, one thread each.

    PYTHONPATH=python python bench/scaling_bench.py [--models mlp,resnet18] [--steps 15]
                                                    [--repeat 5] [--overlap auto|on|off]
                                                    [--batch mlp=64,resnet18=16] [--zero 1]

For each model (the training benchmark's, bench/train_bench.py) and the same global batch, runs
`mpirun -np 1` and `mpirun -np 2` with OMP_NUM_THREADS=1; each rank trains on its shard of every
global batch (TrainingSession, data-parallel under mpirun, SGD-momentum). The global batches are
those of data-parallel training, SCALING_BATCH: at 2 ranks, 64 images per rank for ResNet-18 (the
per-device batch of Horovod's published ResNet benchmarks) and 512 rows per rank for the MLP;
--batch sets others (e.g. the training benchmark's own, mlp=64,resnet18=16). Printed: the median
step time and images per second at each size, the scaling efficiency (images/s at 2 ranks over
twice those at 1), and the share of the 2-rank step spent waiting in collectives, measured as the
difference from the same ranks stepping on their shards without the gradient all-reduce; the
efficiency of those all-reduce-free steps is printed too, as the ceiling communication leaves, and
that of one rank stepping alone on a shard, the ceiling the smaller batch per rank leaves.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCALING_BATCH = {"mlp": 1024, "resnet18": 128, "transformer": 32}


def worker(name: str, path: str, steps: int, data_parallel: bool, global_batch: int, zero: int) -> None:
    """One rank: trains `steps` (+3 warm-up) steps on its shard and prints its median step time."""
    sys.path.insert(0, HERE)
    import onnx

    import graft.distributed as dist
    from graft.training import TrainingSession
    from train_bench import LR, MOMENTUM, make_batches

    rank, size = dist.rank(), dist.size()
    model = onnx.load(path)
    stats = {i for n in model.graph.node if n.op_type == "BatchNormalization" for i in n.input[3:5]}
    params = [i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and i.name not in stats]
    sess = TrainingSession(model, loss="loss", params=params, optimizer="sgd", lr=LR, momentum=MOMENTUM,
                           data_parallel=data_parallel if size > 1 else None, intra_op_num_threads=1,
                           zero_stage=zero if size > 1 and data_parallel else 0)
    shard = global_batch // size
    times = []
    for b in make_batches(name, steps + 3, global_batch):
        feeds = {k: v[rank * shard:(rank + 1) * shard] for k, v in b.items()}
        t0 = time.perf_counter()
        sess.train_step(feeds)
        times.append(time.perf_counter() - t0)
    if size > 1:
        dist.barrier()
    if rank == 0:
        print(json.dumps({"median_s": statistics.median(times[3:])}))


def run(name: str, path: str, ranks: int, steps: int, data_parallel: bool, overlap: str, global_batch: int,
        zero: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1", GRAFT_OVERLAP_COLLECTIVES=overlap)
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(ranks), "-x", "OMP_NUM_THREADS",
           "-x", "PYTHONPATH", "-x", "GRAFT_OVERLAP_COLLECTIVES", sys.executable, os.path.abspath(__file__), "--worker", name, "--onnx", path,
           "--steps", str(steps), "--batch", f"{name}={global_batch}", "--zero", str(zero)]
    if not data_parallel:
        cmd.append("--local")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["median_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mlp,resnet18")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--worker")
    parser.add_argument("--onnx")
    parser.add_argument("--local", action="store_true")
    parser.add_argument("--repeat", type=int, default=5, help="turns of each configuration (the machine is noisy: medians of 5)")
    parser.add_argument("--batch", default="",
                        help="global batch per model, e.g. mlp=64,resnet18=16 (default: SCALING_BATCH)")
    parser.add_argument("--zero", type=int, choices=[0, 1], default=0, help="ZeRO stage of the 2-rank runs")
    parser.add_argument("--overlap", choices=["auto", "on", "off"], default="auto",
                        help="all-reduce on the collective stream, overlapping backward (auto: graft decides)")
    args = parser.parse_args()
    overlap = {"auto": "", "on": "1", "off": "0"}[args.overlap]
    sys.path.insert(0, HERE)
    batches = dict(SCALING_BATCH)
    for item in filter(None, args.batch.split(",")):
        model, _, size = item.partition("=")
        batches[model] = int(size)
    if args.worker:
        worker(args.worker, args.onnx, args.steps, not args.local, batches[args.worker], args.zero)
        return
    if not shutil.which("mpirun"):
        sys.exit("mpirun not found (Debian: openmpi-bin)")
    from train_bench import build_torch, cpu_name, export, make_batches

    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; 1 thread per rank; {args.steps} timed steps (+3 warm-up); "
          f"collective overlap: {args.overlap}; ZeRO stage {args.zero} at 2 ranks")
    print("global batch: " + ", ".join(f"{m} {batches[m]} ({batches[m] // 2} per rank at 2 ranks)"
                                       for m in args.models.split(",")))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            g = batches[name]
            # The exported graph has a static batch: one model per shard size.
            paths = {}
            for ranks in (1, 2):
                paths[ranks] = os.path.join(folder, f"{name}_{ranks}.onnx")
                batch = {k: v[:g // ranks] for k, v in make_batches(name, 1, g)[0].items()}
                export(build_torch(name), batch, paths[ranks])
            # The four configurations take turns, --repeat times, so that a slow spell of the
            # machine does not fall on one of them only; each figure is the median of its turns.
            turns: dict[str, list[float]] = {"one": [], "two": [], "two_local": [], "shard_alone": []}
            for _ in range(args.repeat):
                turns["one"].append(run(name, paths[1], 1, args.steps, True, overlap, g, args.zero))
                turns["two"].append(run(name, paths[2], 2, args.steps, True, overlap, g, args.zero))
                turns["two_local"].append(run(name, paths[2], 2, args.steps, False, overlap, g, args.zero))
                turns["shard_alone"].append(run(name, paths[2], 1, args.steps, True, overlap, g // 2, args.zero))
            one, two, two_local, alone = (statistics.median(turns[k])
                                          for k in ("one", "two", "two_local", "shard_alone"))
            rows.append((name, g, one * 1e3, two * 1e3, g / one, g / two, (g / two) / (2 * g / one),
                         max(0.0, (two - two_local) / two), (g / two_local) / (2 * g / one),
                         one / (2 * alone)))
            print(f"  {name}: done", flush=True)
    print()
    print(f"{'model':<12} {'batch':>5} {'1 rank ms':>10} {'2 ranks ms':>10} {'1 rank img/s':>13} "
          f"{'2 ranks img/s':>14} {'efficiency':>10} {'collective share':>17} {'no-collective efficiency':>25} "
          f"{'shard-batch efficiency':>23}")
    for name, g, t1, t2, i1, i2, eff, share, ceiling, alone in rows:
        print(f"{name:<12} {g:5d} {t1:10.2f} {t2:10.2f} {i1:13.1f} {i2:14.1f} {eff:10.3f} {share:17.3f} "
              f"{ceiling:25.3f} {alone:23.3f}")
    print("\nno-collective efficiency: the same 2 ranks stepping on their shards without the all-reduce, over "
          "twice 1 rank;\nthe efficiency data parallelism could reach here if communication cost nothing.\n"
          "shard-batch efficiency: 1 rank stepping alone on one shard (half the global batch), over twice 1 rank "
          "on the\nwhole batch; what the smaller batch per rank leaves before two processes share the machine.")


if __name__ == "__main__":
    main()
