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


def _sum_of_pads_model(pads_list, pad_axes_input=False, value=None):
    """Sum over Pad(x_i, pads_i) for x_i of shape (2, k_i, 3) along axis 1."""
    from onnx import TensorProto, helper, numpy_helper
    nodes, inputs, inits = [], [], []
    for i, (k, pads) in enumerate(pads_list):
        inputs.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [2, k, 3]))
        inits.append(numpy_helper.from_array(np.array(pads, np.int64), f"pads{i}"))
        pad_inputs = [f"x{i}", f"pads{i}"]
        if value is not None:
            inits.append(numpy_helper.from_array(np.array(value, np.float32), f"value{i}"))
            pad_inputs.append(f"value{i}")
        nodes.append(helper.make_node("Pad", pad_inputs, [f"p{i}"]))
    nodes.append(helper.make_node("Sum", [f"p{i}" for i in range(len(pads_list))], ["y"]))
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("pieces,concat", [
    ([(1, [0, 0, 0, 0, 2, 0]), (1, [0, 1, 0, 0, 1, 0]), (1, [0, 2, 0, 0, 0, 0])], True),   # q, k, v slices
    ([(2, [0, 3, 0, 0, 0, 0]), (3, [0, 0, 0, 0, 2, 0])], True),                          # out of order, k 3 and 2
    ([(1, [0, 0, 0, 0, 1, 0]), (1, [0, 0, 0, 0, 1, 0])], False),                         # overlapping
    ([(1, [0, 0, 0, 0, 2, 0]), (1, [0, 2, 0, 0, 0, 0])], False),                         # a gap at index 1
    ([(1, [0, 0, 0, 0, 1, 1]), (1, [0, 1, 0, 0, 0, 1])], False),                         # a second padded axis
])
def test_sum_of_zero_pads_becomes_concat(tmp_path, pieces, concat):
    from onnx.reference import ReferenceEvaluator
    model = _sum_of_pads_model(pieces)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    opts = graft.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    rng = np.random.default_rng(1)
    feeds = {f"x{i}": rng.standard_normal((2, k, 3)).astype(np.float32) for i, (k, _) in enumerate(pieces)}
    try:
        want = ReferenceEvaluator(model).run(None, feeds)[0]
    except Exception:  # shapes that do not sum (the gap case): graft must refuse them too
        with pytest.raises(Exception):
            graft.InferenceSession(str(path), sess_options=opts).run(None, feeds)
        return
    got = graft.InferenceSession(str(path), sess_options=opts).run(None, feeds)[0]
    np.testing.assert_array_equal(got, want)
    ops = [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node]
    assert ("Concat" in ops and "Pad" not in ops and "Sum" not in ops) == concat, ops


def test_pad_with_a_fill_value_is_not_a_concat(tmp_path):
    model = _sum_of_pads_model([(1, [0, 0, 0, 0, 1, 0]), (1, [0, 1, 0, 0, 0, 0])], value=1.5)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    opts = graft.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    feeds = {"x0": np.ones((2, 1, 3), np.float32), "x1": np.full((2, 1, 3), 2.0, np.float32)}
    got = graft.InferenceSession(str(path), sess_options=opts).run(None, feeds)[0]
    np.testing.assert_array_equal(got, np.concatenate([np.full((2, 1, 3), 2.5), np.full((2, 1, 3), 3.5)], axis=1))
    assert "Pad" in [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node]


@pytest.mark.parametrize("a_shape,b_shape,bias_len,transpose_b,bias_first", [
    ((2, 5, 4), (4, 3), 3, False, False),   # a linear layer on a batch of sequences
    ((5, 4), (3, 4), 3, True, True),        # the weight stored transposed, Add(bias, product)
    ((2, 5, 4), (2, 4, 3), 1, False, False),  # batched B, a single bias value
])
def test_bias_add_folds_into_the_matmul(tmp_path, a_shape, b_shape, bias_len, transpose_b, bias_first):
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    rng = np.random.default_rng(2)
    nodes, b_name = [], "b"
    if transpose_b:
        nodes.append(helper.make_node("Transpose", ["b"], ["bt"], perm=[1, 0]))
        b_name = "bt"
    nodes.append(helper.make_node("MatMul", ["a", b_name], ["p"]))
    nodes.append(helper.make_node("Add", ["bias", "p"] if bias_first else ["p", "bias"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(rng.standard_normal(b_shape).astype(np.float32), "b"),
                               numpy_helper.from_array(rng.standard_normal(bias_len).astype(np.float32), "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    opts = graft.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    a = rng.standard_normal(a_shape).astype(np.float32)
    got = graft.InferenceSession(str(path), sess_options=opts).run(None, {"a": a})[0]
    want = ReferenceEvaluator(model).run(None, {"a": a})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    saved = onnx.load(opts.optimized_model_filepath)
    assert [(n.op_type, len(n.input)) for n in saved.graph.node] == [("FusedMatMul", 3)]


def test_elementwise_ops_reuse_only_dead_buffers():
    """Unary, binary and Sum nodes may write into an input's buffer when nothing reads it later:
    values still needed downstream, graph inputs and outputs, and an input read twice by the same
    node must keep their contents."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator
    nodes = [helper.make_node("Add", ["x", "y"], ["a"]),        # a is read again below
             helper.make_node("Relu", ["a"], ["r"]),            # may not overwrite a
             helper.make_node("Mul", ["r", "r"], ["m"]),        # the same input twice
             helper.make_node("Neg", ["m"], ["n"]),             # m is dead after: reused
             helper.make_node("Sub", ["bias", "n"], ["s"]),     # broadcast bias, n reused
             helper.make_node("Sum", ["s", "a", "r"], ["t"]),   # s reused, a and r read
             helper.make_node("Exp", ["t"], ["out1"]),
             helper.make_node("Abs", ["a"], ["out2"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 5]),
                                           helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 5]),
                                           helper.make_tensor_value_info("bias", TensorProto.FLOAT, [5])],
                              [helper.make_tensor_value_info("out1", TensorProto.FLOAT, [4, 5]),
                               helper.make_tensor_value_info("out2", TensorProto.FLOAT, [4, 5]),
                               helper.make_tensor_value_info("r", TensorProto.FLOAT, [4, 5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    rng = np.random.default_rng(4)
    feeds = {k: rng.standard_normal(s).astype(np.float32) for k, s in (("x", (4, 5)), ("y", (4, 5)), ("bias", (5,)))}
    kept = {k: v.copy() for k, v in feeds.items()}
    sess = graft.InferenceSession(model.SerializeToString())
    want = ReferenceEvaluator(model).run(None, feeds)
    for _ in range(2):  # the second run reuses the first run's cached buffers
        got = sess.run(None, feeds)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    for k in feeds:
        np.testing.assert_array_equal(feeds[k], kept[k])  # the caller's arrays are untouched


def _qkv_split_model(identity: bool):
    """PyTorch's exported q, k, v split: (S, B, 3E) -> view (S, B, 3, E) -> unsqueeze(0) ->
    transpose(0, -2) -> squeeze(-2) [-> contiguous] -> t[0], t[1], t[2]; then q * k + v summed."""
    from onnx import TensorProto, helper, numpy_helper
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["view"]),
             helper.make_node("Unsqueeze", ["view", "zero"], ["u"]),
             helper.make_node("Transpose", ["u"], ["t"], perm=[3, 1, 2, 0, 4]),
             helper.make_node("Squeeze", ["t", "three"], ["s"])]
    source = "s"
    if identity:
        nodes.append(helper.make_node("Identity", ["s"], ["c"]))
        source = "c"
    for i, name in enumerate("qkv"):
        nodes.append(helper.make_node("Gather", [source, f"i{i}"], [name], axis=0))
    nodes += [helper.make_node("Mul", ["q", "k"], ["qk"]), helper.make_node("Add", ["qk", "v"], ["y"]),
              helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0)]
    inits = [numpy_helper.from_array(np.array([5, 2, 3, 4], np.int64), "shape"),
             numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([3], np.int64), "three")]
    inits += [numpy_helper.from_array(np.array(i, np.int64), f"i{i}") for i in range(3)]
    graph = helper.make_graph(nodes, "qkv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 2, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 2, 4]),
                               helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


@pytest.mark.parametrize("identity", [False, True])
def test_qkv_split_takes_slices_without_transposing(tmp_path, identity):
    from onnx.reference import ReferenceEvaluator
    model = _qkv_split_model(identity)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    opts = graft.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    x = np.random.default_rng(5).standard_normal((5, 2, 12)).astype(np.float32)
    got = graft.InferenceSession(str(path), sess_options=opts).run(["y"], {"x": x})[0]
    np.testing.assert_allclose(got, ReferenceEvaluator(model).run(["y"], {"x": x})[0], rtol=1e-6)
    saved = onnx.load(opts.optimized_model_filepath)
    ops = [n.op_type for n in saved.graph.node]
    assert "Transpose" not in ops and "Unsqueeze" not in ops and "Squeeze" not in ops, ops
    gathers = [n for n in saved.graph.node if n.op_type == "Gather"]
    assert [n.input[0] for n in gathers] == ["view"] * 3
    assert [helper_attr(n, "axis") for n in gathers] == [2] * 3


def helper_attr(node, name):
    return next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def test_gather_through_transpose_keeps_the_rest_of_the_permutation(tmp_path):
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 3, 0, 2]),
             helper.make_node("Gather", ["t", "i"], ["y"], axis=2),      # a scalar index: sliced
             helper.make_node("Gather", ["t", "j"], ["z"], axis=1)]      # a vector index: kept
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array(-1, np.int64), "i"),
                               numpy_helper.from_array(np.array([4, 0], np.int64), "j")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    opts = graft.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5)).astype(np.float32)
    got = graft.InferenceSession(str(path), sess_options=opts).run(None, {"x": x})
    want = ReferenceEvaluator(model).run(None, {"x": x})
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    saved = onnx.load(opts.optimized_model_filepath)
    y_gather = next(n for n in saved.graph.node if n.op_type == "Gather" and n.input[0] == "x")
    assert helper_attr(y_gather, "axis") == 0  # perm[2] == 0


@pytest.mark.parametrize("identity", [False, True])
def test_qkv_split_gradient_matches_torch(identity):
    import torch
    from graft.training import TrainingSession
    model = _qkv_split_model(identity)
    # x as a parameter: its gradient is the whole backward of the split.
    x0 = np.random.default_rng(7).standard_normal((5, 2, 12)).astype(np.float32)
    graph = model.graph
    graph.input.pop(0)
    graph.initializer.append(onnx.numpy_helper.from_array(x0, "x"))
    sess = TrainingSession(model, loss="loss", params=["x"], optimizer="sgd", lr=1.0)
    sess.train_step({})
    got = x0 - sess.state()["x"]  # one SGD step of lr 1: the gradient
    xt = torch.tensor(x0, requires_grad=True)
    t = xt.view(5, 2, 3, 4).unsqueeze(0).transpose(0, -2).squeeze(-2)
    (t[0] * t[1] + t[2]).sum().backward()
    np.testing.assert_allclose(got, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
