"""Writes the seed corpora of the fuzz targets (tests/fuzz) into a folder outside the tree.

    python tests/fuzz/make_corpus.py build-san/fuzz-corpus

fuzz_model/: small models of the ONNX backend suite of the installed `onnx` package (node tests,
generated in memory as tests/conformance/run.py does, and the stored simple and PyTorch-operator
models), picked evenly over the sorted names so that most operators are represented.
fuzz_checkpoint/: checkpoints written by graft's Python API (graft.checkpoint and the training
API after one AdamW step), each twice: as it is, and as the body whose checksums the target
recomputes (the first byte says which; see fuzz_checkpoint.cc).
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def node_models() -> dict[str, bytes]:
    from onnx.backend.test.loader import load_model_tests

    models = {}
    for case in load_model_tests(kind="node"):
        if case.model is not None:
            models[case.name] = case.model.SerializeToString()
    data = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    for kind in ("simple", "pytorch-operator"):
        for path in glob.glob(os.path.join(data, kind, "*", "model.onnx")):
            with open(path, "rb") as f:
                models[os.path.basename(os.path.dirname(path))] = f.read()
    return models


def write_model_seeds(out: str, count: int, max_bytes: int) -> int:
    models = {name: data for name, data in node_models().items() if len(data) <= max_bytes}
    names = sorted(models)
    step = max(1, len(names) / count)
    picked = sorted({names[int(i * step)] for i in range(min(count, len(names)))})
    for name in picked:
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(models[name])
    return len(picked)


def linear_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3), "w")
    b = numpy_helper.from_array(np.array([0.5, -0.5, 0.25], np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def checkpoint_files(tmp: str) -> dict[str, bytes]:
    import graft.checkpoint
    from graft.training import api, artifacts

    paths = {}
    path = os.path.join(tmp, "plain.ckpt")
    graft.checkpoint.save_checkpoint(path, {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3), "step_count": np.array(3, np.int64),
        "half": np.array([1.5, -2.0], np.float16), "mask": np.array([True, False]),
        "empty": np.zeros((0, 4), np.float64)}, step=7, properties={"note": "seed", "graft.lr": "0.01"})
    paths["plain"] = path
    path = os.path.join(tmp, "none.ckpt")
    graft.checkpoint.save_checkpoint(path, {})
    paths["empty"] = path

    out = os.path.join(tmp, "artifacts")
    artifacts.generate_artifacts(linear_model(), loss=artifacts.LossType.MSELoss,
                                 optimizer=artifacts.OptimType.AdamW, artifact_directory=out,
                                 nominal_checkpoint=True)
    paths["artifacts"] = os.path.join(out, "checkpoint")
    paths["nominal"] = os.path.join(out, "nominal_checkpoint")
    state = api.CheckpointState.load_checkpoint(paths["artifacts"])
    module = api.Module(os.path.join(out, "training_model.onnx"), state,
                        os.path.join(out, "eval_model.onnx"))
    optimizer = api.Optimizer(os.path.join(out, "optimizer_model.onnx"), module)
    module.train()
    module(np.ones((2, 4), np.float32), np.zeros((2, 3), np.float32))
    optimizer.step()
    path = os.path.join(tmp, "trained.ckpt")
    api.CheckpointState.save_checkpoint(state, path, include_optimizer_state=True)
    paths["trained"] = path
    files = {}
    for name, path in paths.items():
        with open(path, "rb") as f:
            files[name] = f.read()
    return files


def write_checkpoint_seeds(out: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        files = checkpoint_files(tmp)
    for name, data in files.items():
        # Even first byte: the target appends the checksums itself; odd: the file as it is.
        with open(os.path.join(out, name + ".body"), "wb") as f:
            f.write(b"\x00" + data[:-8])
        with open(os.path.join(out, name + ".file"), "wb") as f:
            f.write(b"\x01" + data)
    return 2 * len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write fuzz_model/ and fuzz_checkpoint/ into")
    parser.add_argument("--models", type=int, default=400, help="how many models (default 400)")
    parser.add_argument("--max-bytes", type=int, default=4096, help="largest model file (default 4096)")
    args = parser.parse_args()
    counts = {}
    for target, write in (("fuzz_model", lambda d: write_model_seeds(d, args.models, args.max_bytes)),
                          ("fuzz_checkpoint", write_checkpoint_seeds)):
        folder = os.path.join(args.out, target)
        os.makedirs(folder, exist_ok=True)
        counts[target] = write(folder)
    print("seeds: " + ", ".join(f"{target} {n}" for target, n in counts.items()))


if __name__ == "__main__":
    main()
