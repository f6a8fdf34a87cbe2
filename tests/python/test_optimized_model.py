"""The basic graph passes (constant folding, no-op elimination, common subexpressions) through
the Python API: the optimized model saved at `optimized_model_filepath` is valid ONNX, onnxruntime
and graft load it, and every level computes what the unoptimized model does."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import graft


def _bert_like_block(seed=0):
    """A self-attention block with the shape arithmetic PyTorch's exporter writes for its
    Reshapes (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), duplicated Shape nodes, a
    Dropout, a no-op Cast and a Transpose pair: input x [2, 8, 16]."""
    rng = np.random.default_rng(seed)
    b, s, h, heads = 2, 8, 16, 2
    inits = [numpy_helper.from_array(rng.standard_normal((h, h)).astype(np.float32) * 0.2, n)
             for n in ("wq", "wk", "wv")]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              [("i0", 0), ("i1", 1), ("ax0", [0]), ("heads", [heads]), ("hd", [h // heads]),
               ("minus1", [-1])]]
    inits.append(numpy_helper.from_array(np.array(1.0 / np.sqrt(h // heads), np.float32), "scale"))
    nodes = []
    def split_heads(name, src):
        # Each projection recomputes the shape, as exporters do.
        nodes.extend([
            helper.make_node("MatMul", [src, f"w{name}"], [f"{name}_p"]),
            helper.make_node("Shape", [f"{name}_p"], [f"{name}_s"]),
            helper.make_node("Gather", [f"{name}_s", "i0"], [f"{name}_b"], axis=0),
            helper.make_node("Gather", [f"{name}_s", "i1"], [f"{name}_l"], axis=0),
            helper.make_node("Unsqueeze", [f"{name}_b", "ax0"], [f"{name}_bu"]),
            helper.make_node("Unsqueeze", [f"{name}_l", "ax0"], [f"{name}_lu"]),
            helper.make_node("Concat", [f"{name}_bu", f"{name}_lu", "heads", "hd"], [f"{name}_shape"], axis=0),
            helper.make_node("Reshape", [f"{name}_p", f"{name}_shape"], [f"{name}_r"]),
            helper.make_node("Transpose", [f"{name}_r"], [f"{name}_t"], perm=[0, 2, 1, 3]),
        ])
    nodes.append(helper.make_node("Cast", ["x"], ["xc"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Dropout", ["xc"], ["xd"]))
    for name in ("q", "k", "v"):
        split_heads(name, "xd")
    nodes += [
        helper.make_node("Transpose", ["k_t"], ["k_tt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q_t", "k_tt"], ["scores"]),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v_t"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        # Back to [b, s, h] through a transpose pair that cancels.
        helper.make_node("Transpose", ["ctx_t"], ["ctx_a"], perm=[1, 0, 2, 3]),
        helper.make_node("Transpose", ["ctx_a"], ["ctx_b"], perm=[1, 0, 2, 3]),
        helper.make_node("Shape", ["x"], ["x_s"]),
        helper.make_node("Reshape", ["ctx_b", "x_s"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [b, s, h])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [b, s, h])], inits)
    # IR version 10: what the onnxruntime used here reads.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(model)
    return model


def _session(model, tmp_path, level):
    opts = graft.SessionOptions()
    opts.graph_optimization_level = level
    opts.optimized_model_filepath = str(tmp_path / f"opt{level}.onnx")
    return graft.InferenceSession(model.SerializeToString(), sess_options=opts), opts.optimized_model_filepath


@pytest.mark.parametrize("level", [1, 2, 99])
def test_optimized_model_is_valid_and_equivalent(tmp_path, level):
    model = _bert_like_block()
    x = np.random.default_rng(1).standard_normal((2, 8, 16)).astype(np.float32)
    want = _session(model, tmp_path, 0)[0].run(None, {"x": x})[0]
    got = _session(model, tmp_path, level)[0].run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    saved = onnx.load(str(tmp_path / f"opt{level}.onnx"))
    onnx.checker.check_model(saved, full_check=True)
    ops = [n.op_type for n in saved.graph.node]
    # The shape arithmetic is folded, the duplicates merged, the no-ops gone.
    for gone in ("Shape", "Gather", "Unsqueeze", "Concat", "Dropout", "Cast"):
        assert gone not in ops, ops
    assert len(ops) < len(model.graph.node) // 2, ops
    # graft reloads its own output; onnxruntime too when it holds only ai.onnx ops.
    again = graft.InferenceSession(str(tmp_path / f"opt{level}.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(again, want, rtol=1e-5, atol=1e-5)
    if all(n.domain in ("", "ai.onnx") for n in saved.graph.node):
        theirs = ort.InferenceSession(str(tmp_path / f"opt{level}.onnx"),
                                      providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        np.testing.assert_allclose(theirs, want, rtol=1e-5, atol=1e-5)


def test_basic_level_counts(tmp_path):
    model = _bert_like_block()
    _, path = _session(model, tmp_path, 1)
    ops = [n.op_type for n in onnx.load(path).graph.node]
    # Three projections (MatMul, Reshape, Transpose each), the attention core, and one
    # Transpose + Reshape back: the transpose pair cancelled, k's two Transposes composed.
    assert sorted(ops) == sorted(["MatMul"] * 3 + ["Reshape"] * 3 + ["Transpose"] * 3 +
                                 ["MatMul", "Mul", "Softmax", "MatMul", "Transpose", "Reshape"]), ops


def test_folding_matches_onnx_reference(tmp_path):
    """Constant subgraphs computed by graft's kernels at load time agree with onnx.reference."""
    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Transpose", ["w"], ["wt"]),
             helper.make_node("Exp", ["wt"], ["we"]),
             helper.make_node("ReduceSum", ["we", "axes"], ["ws"], keepdims=1),
             helper.make_node("Div", ["we", "ws"], ["wn"]),
             helper.make_node("Range", ["start", "limit", "delta"], ["r"]),
             helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["wn", "rf"], ["c"]),
             helper.make_node("MatMul", ["x", "c"], ["y"])]
    inits = [w, numpy_helper.from_array(np.array([1], np.int64), "axes"),
             numpy_helper.from_array(np.array(0, np.int64), "start"),
             numpy_helper.from_array(np.array(4, np.int64), "limit"),
             numpy_helper.from_array(np.array(1, np.int64), "delta")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = rng.standard_normal((2, 3)).astype(np.float32)
    sess, path = _session(model, tmp_path, 1)
    assert [n.op_type for n in onnx.load(path).graph.node] == ["MatMul"]
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-6)


def test_shape_of_ceil_mode_pooling_is_not_folded(tmp_path):
    """onnx's shape inference gives AveragePool with ceil_mode one window more than the operator
    computes when the last window starts in the right padding ([1, 2, 4, 3] for [1, 2, 4, 2]):
    Shape of that output, and of anything computed from it, must be read at run time."""
    nodes = [
        helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 3], pads=[1, 0, 0, 1],
                         ceil_mode=1, count_include_pad=1),
        helper.make_node("Relu", ["y"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Reshape", ["r", "s"], ["z"]),
    ]
    graph = helper.make_graph(nodes, "pool_shape", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 7, 6])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)
    x = np.random.default_rng(0).standard_normal((1, 2, 7, 6)).astype(np.float32)
    # onnxruntime folds that Shape too and fails here; onnx.reference runs the graph as written.
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    assert expected.shape == (1, 2, 4, 2)
    for level in (1, 99):
        got = _session(model, tmp_path, level)[0].run(None, {"x": x})[0]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
