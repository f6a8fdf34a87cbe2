"""Threads: the OpenMP wait policy the package sets, intra_op_num_threads and the parallel mode."""

import os
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import graft

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def spin_count_of_the_library() -> str:
    with open(os.path.join(ROOT, "exec", "threading.h")) as f:
        return re.search(r'kOpenMPSpinCount = "(\d+)"', f.read()).group(1)


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    environ.update(env)
    environ["PYTHONPATH"] = os.path.join(ROOT, "python")
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120)


def two_branch_model(path: str, ir_version: int) -> None:
    """Two independent Conv -> Relu -> Conv branches over one image, and their sum."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    for side in ("a", "b"):
        for k, (cin, cout) in enumerate(((8, 32), (32, 16))):
            name = f"w{k}{side}"
            inits.append(numpy_helper.from_array(
                (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32), name))
        nodes += [helper.make_node("Conv", ["x", f"w0{side}"], [f"c{side}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{side}"], [f"r{side}"]),
                  helper.make_node("Conv", [f"r{side}", f"w1{side}"], [f"y{side}"], pads=[1, 1, 1, 1])]
    nodes.append(helper.make_node("Add", ["ya", "yb"], ["sum"]))
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("ya", "yb", "sum")]
    graph = helper.make_graph(nodes, "two_branches",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 32, 32])], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = ir_version
    onnx.save(model, path)


def test_the_package_asks_openmp_for_a_short_spin():
    out = python("import os, graft; print(os.environ.get('GOMP_SPINCOUNT'))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == spin_count_of_the_library()


@pytest.mark.parametrize("env, expected", [({"GOMP_SPINCOUNT": "77"}, "77"),
                                           ({"OMP_WAIT_POLICY": "active"}, "None")])
def test_the_users_setting_wins(env, expected):
    out = python("import os, graft; print(os.environ.get('GOMP_SPINCOUNT'))", **env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


def test_openmp_loaded_first_is_left_alone_and_named(tmp_path):
    # torch brings its own libgomp; once loaded, graft's _C binds to it and the spin it kept.
    path = str(tmp_path / "m.onnx")
    two_branch_model(path, 10)
    code = ("import os, torch, graft\n"
            "print(os.environ.get('GOMP_SPINCOUNT'))\n"
            "o = graft.SessionOptions(); o.intra_op_num_threads = 2\n"
            f"graft.InferenceSession({path!r}, o)\n")
    out = python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"
    assert f"GOMP_SPINCOUNT={spin_count_of_the_library()}" in out.stderr


def test_intra_op_num_threads_bounds_the_threads_a_run_starts(tmp_path):
    # A fresh process: one OpenMP thread starts no worker; two start one, shared by later runs.
    path = str(tmp_path / "m.onnx")
    two_branch_model(path, 10)
    code = ("import os, numpy as np, graft\n"
            "def threads(): return len(os.listdir('/proc/self/task'))\n"
            "x = {'x': np.ones((2, 8, 32, 32), np.float32)}\n"
            "def session(n):\n"
            "    o = graft.SessionOptions(); o.intra_op_num_threads = n\n"
            "    return graft.InferenceSession(%r, o)\n"
            "one = session(1)\n"
            "start = threads(); a = one.run(None, x); after_one = threads()\n"
            "two = session(2); b = two.run(None, x); after_two = threads(); c = one.run(None, x)\n"
            "same = all(np.allclose(p, q, atol=1e-5) for p, q in zip(a + a, b + c))\n"
            "print(start, after_one, after_two, threads(), same)\n") % path
    out = python(code)
    assert out.returncode == 0, out.stderr
    start, after_one, after_two, end, same = out.stdout.split()
    assert int(after_one) == int(start)
    assert int(after_two) == int(start) + 1
    assert int(end) == int(after_two)
    assert same == "True"


def test_parallel_mode_matches_sequential_and_onnxruntime(tmp_path, ort_ir_version):
    path = str(tmp_path / "m.onnx")
    two_branch_model(path, ort_ir_version)
    x = {"x": np.random.default_rng(1).standard_normal((2, 8, 32, 32)).astype(np.float32)}
    sequential = graft.SessionOptions()
    sequential.intra_op_num_threads = 1
    expected = graft.InferenceSession(path, sequential).run(None, x)
    reference = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, x)
    for inter in (2, 3):
        options = graft.SessionOptions()
        options.execution_mode = graft.ExecutionMode.ORT_PARALLEL
        options.inter_op_num_threads = inter
        options.intra_op_num_threads = inter  # one OpenMP thread per branch, as the sequential run
        session = graft.InferenceSession(path, options)
        for _ in range(3):
            got = session.run(None, x)
            for g, e, r in zip(got, expected, reference):
                np.testing.assert_array_equal(g, e)
                np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_execution_mode_is_checked(tmp_path):
    path = str(tmp_path / "m.onnx")
    two_branch_model(path, 10)
    options = graft.SessionOptions()
    options.execution_mode = 2
    with pytest.raises(Exception, match="execution_mode"):
        graft.InferenceSession(path, options)
