"""Graph optimization levels: rewrites change the saved optimized model, never the outputs."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import graft
import sys, os
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
from demo import build_cnn  # noqa: E402


def _run(tmp_path, level: int):
    path = tmp_path / "cnn.onnx"
    onnx.save(build_cnn(seed=3), path)
    opts = graft.SessionOptions()
    opts.graph_optimization_level = level
    opts.optimized_model_filepath = str(tmp_path / f"opt{level}.onnx")
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    got = graft.InferenceSession(str(path), sess_options=opts).run(None, {"image": x})[0]
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    saved = onnx.load(opts.optimized_model_filepath)
    onnx.checker.check_model(saved, full_check=True)
    return got, want, [n.op_type for n in saved.graph.node]


@pytest.mark.parametrize("level", [0, 1, 2, 99])
def test_levels_keep_outputs(tmp_path, level):
    got, want, ops = _run(tmp_path, level)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert ("BatchNormalization" in ops) == (level < 2)


def test_identity_and_dropout_removed(tmp_path):
    from onnx import TensorProto, helper
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Dropout", ["a"], ["b"]),
             helper.make_node("Relu", ["b"], ["c"]), helper.make_node("Identity", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    opts = graft.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    y = graft.InferenceSession(str(path), sess_options=opts).run(None, {"x": np.array([-1, 0, 2], np.float32)})[0]
    np.testing.assert_array_equal(y, [0, 0, 2])
    # The last Identity produces a graph output and stays, keeping the output's name.
    assert [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node] == ["Relu", "Identity"]
