"""What the data-parallel test and its mpirun scripts share: a small MLP whose loss is a mean
over the batch (so the average of per-rank gradients is the gradient of the whole batch), the
batches, and the optimizers compared."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

STEPS = 20
BATCH = 8  # per rank; the single-process reference takes 2 * BATCH
OPTIMIZERS = {"sgd": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
              "adamw": {"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.01, "max_grad_norm": 1.0}}


def mlp(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {"fc1.weight": (rng.standard_normal((16, 6)) * 0.4).astype(np.float32),
              "fc1.bias": (rng.standard_normal(16) * 0.1).astype(np.float32),
              "fc2.weight": (rng.standard_normal((3, 16)) * 0.4).astype(np.float32),
              "fc2.bias": (rng.standard_normal(3) * 0.1).astype(np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], transB=1),
             helper.make_node("Tanh", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["y"], transB=1),
             helper.make_node("Sub", ["y", "target"], ["err"]),
             helper.make_node("Mul", ["err", "err"], ["sq"]),
             helper.make_node("ReduceMean", ["sq"], ["loss"], keepdims=0)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6]),
                                             helper.make_tensor_value_info("target", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
                               helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])],
                              [numpy_helper.from_array(v, k) for k, v in params.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


def global_batches():
    """The global batches of 2 * BATCH rows; rank r takes rows r*BATCH:(r+1)*BATCH."""
    rng = np.random.default_rng(42)
    for _ in range(STEPS):
        x = rng.standard_normal((2 * BATCH, 6)).astype(np.float32)
        yield x, np.tanh(x[:, :3] * 2).astype(np.float32)


def mpirun(ranks: int = 2, transport: str = "self,vader") -> list[str]:
    """The mpirun command line for `ranks` ranks as root on this machine (oversubscribed: more
    ranks than cores are fine), with `transport` as Open MPI's byte transfer layers; skips the
    test with a printed reason when Open MPI is not installed."""
    path = shutil.which("mpirun")
    if path is None:
        print("mpirun not found: install openmpi-bin to run the data-parallel tests")
        pytest.skip("mpirun not found (openmpi-bin)")
    return [path, "--allow-run-as-root", "--oversubscribe", "-np", str(ranks), "--mca", "btl", transport]


def run_checked(cmd: list[str], env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs `cmd`; fails the test with its output unless it exits 0."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def python_env(**extra: str) -> dict:
    """The environment for Python ranks: graft's package on PYTHONPATH, one thread each."""
    package = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python")
    return dict(os.environ, OMP_NUM_THREADS="1",
                PYTHONPATH=os.path.abspath(package) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)
