"""Resident memory of inference in a fresh process: the memory pattern's arena takes the place of
the blocks its recording run freed instead of adding to them, and outputs equal onnxruntime's."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WIDTHS = [16, 24, 32, 40, 48]  # a different activation size per convolution


def _conv_chain(path: str) -> None:
    rng = np.random.default_rng(0)
    nodes, inits, x, c = [], [], "x", 3
    for i, w in enumerate(WIDTHS):
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((w, c, 3, 3)) * 0.1).astype(np.float32), f"w{i}"))
        nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1],
                                      name=f"conv{i}"))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        x, c = f"r{i}", w
    nodes.append(helper.make_node("ReduceMean", [x], ["y"], axes=[2, 3], keepdims=0, name="mean"))
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, 96, 96])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", WIDTHS[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save(model, path)


CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import graft

    def rss_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    sess = graft.InferenceSession(sys.argv[1])
    x = np.random.default_rng(1).random((8, 3, 96, 96), dtype=np.float32)
    first = sess.run(None, {"x": x})[0]
    after_first = rss_mib()
    second = sess.run(None, {"x": x})[0]
    after_second = rss_mib()
    np.save(sys.argv[2], second)
    print(json.dumps({"after_first": after_first, "after_second": after_second,
                      "arena_mib": sum(sess.planned_peak_bytes().values()) / 2**20,
                      "same": bool(np.array_equal(first, second))}))
""")


def test_pattern_arena_replaces_recorded_blocks(tmp_path):
    import onnxruntime as ort

    model = str(tmp_path / "chain.onnx")
    _conv_chain(model)
    out = str(tmp_path / "y.npy")
    proc = subprocess.run([sys.executable, "-c", CHILD, model, out], capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["same"]
    assert got["arena_mib"] > 8, got
    # Before the allocator bounded its cache by the peak of live bytes, the second run added the
    # whole arena on top of the first run's cached blocks.
    assert got["after_second"] - got["after_first"] < 0.5 * got["arena_mib"], got
    x = np.random.default_rng(1).random((8, 3, 96, 96), dtype=np.float32)
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.load(out), want, rtol=1e-4, atol=1e-5)
