"""Latency of graft against onnxruntime on the same models, same inputs, same process.

    PYTHONPATH=python python bench/compare_ort.py [--threads 1] [--repeat 30] [--models cnn,resnet18,encoder]

Runs the two runtimes alternately (so load on the machine hits both alike) and prints the
median latency of each and the ratio graft / onnxruntime (below 1: graft is faster), with the
machine and library versions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))

import graft  # noqa: E402
from machine import cpu_name  # noqa: E402  (bench/ is the script's folder)


def build(name: str, folder: str) -> tuple[str, dict[str, np.ndarray]]:
    path = os.path.join(folder, f"{name}.onnx")
    if name == "cnn":
        from demo import build_cnn

        onnx.save(build_cnn(), path)
        return path, {"image": np.random.default_rng(0).standard_normal((8, 1, 28, 28)).astype(np.float32)}
    import torch
    from torch_models import ResNet18, export, randomize_batchnorm, transformer_encoder

    torch.manual_seed(0)
    if name == "resnet18":
        model = ResNet18()
        randomize_batchnorm(model, seed=1)
        x = torch.randn(1, 3, 224, 224)
    elif name == "encoder":
        model = transformer_encoder()
        x = torch.randn(4, 64, 64)
    else:
        raise ValueError(f"unknown model {name}")
    export(model, (x,), path)
    m = onnx.load(path)
    m.ir_version = min(m.ir_version, 10)
    onnx.save(m, path)
    return path, {"input": x.numpy()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--models", default="cnn,resnet18,encoder")
    args = parser.parse_args()

    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; threads per runtime: {args.threads}")
    print(f"graft {graft.__version__}, onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")
    print(f"{'model':<10} {'graft ms':>10} {'ort ms':>10} {'graft/ort':>10} {'max |diff|':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            path, feeds = build(name, tmp)
            go = graft.SessionOptions()
            go.intra_op_num_threads = args.threads
            oo = ort.SessionOptions()
            oo.intra_op_num_threads = args.threads
            ours = graft.InferenceSession(path, sess_options=go)
            theirs = ort.InferenceSession(path, sess_options=oo, providers=["CPUExecutionProvider"])
            diff = float(np.abs(ours.run(None, feeds)[0] - theirs.run(None, feeds)[0]).max())
            times: dict[str, list[float]] = {"graft": [], "ort": []}
            for _ in range(args.repeat):
                for key, sess in (("graft", ours), ("ort", theirs)):
                    start = time.perf_counter()
                    sess.run(None, feeds)
                    times[key].append((time.perf_counter() - start) * 1e3)
            g, o = statistics.median(times["graft"]), statistics.median(times["ort"])
            print(f"{name:<10} {g:>10.2f} {o:>10.2f} {g / o:>10.2f} {diff:>11.2g}")


if __name__ == "__main__":
    main()
