"""graft.InferenceSession behaves like onnxruntime.InferenceSession for common code."""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import graft


def _model(ir_version: int = 10) -> onnx.ModelProto:
    bias = numpy_helper.from_array(np.array([1.0, -2.0, 0.5], np.float32), "bias")
    nodes = [
        helper.make_node("Add", ["x", "bias"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["r"], name="relu"),
        helper.make_node("ReduceSum", ["r"], ["total"], keepdims=0, name="sum"),
        helper.make_node("Identity", ["r"], ["copy"], name="id"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("copy", TensorProto.FLOAT, ["batch", 3])], [bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = ir_version
    return model


def test_io_metadata_matches_onnxruntime():
    data = _model().SerializeToString()
    ours, theirs = graft.InferenceSession(data), ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for a, b in zip(ours.get_inputs() + ours.get_outputs(), theirs.get_inputs() + theirs.get_outputs()):
        assert (a.name, a.type, a.shape) == (b.name, b.type, b.shape)


def test_run_matches_onnxruntime_and_selects_outputs():
    data = _model().SerializeToString()
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    ours = graft.InferenceSession(data)
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for names in (None, ["copy"], ["copy", "total"]):
        got, want = ours.run(names, {"x": x}), theirs.run(names, {"x": x})
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-6)
    with pytest.raises(graft.InvalidArgument, match="invalid output name"):
        ours.run(["nope"], {"x": x})


def test_providers_and_options(tmp_path):
    assert graft.get_available_providers() == ["CPUExecutionProvider"]
    opts = graft.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = graft.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "prof")
    # No GPU here: CUDA is left out with onnxruntime's warning, and the session runs on the CPU.
    with pytest.warns(UserWarning, match="Specified provider 'CUDAExecutionProvider' is not in available"):
        sess = graft.InferenceSession(_model().SerializeToString(), sess_options=opts,
                                      providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    sess.run(None, {"x": np.zeros((2, 3), np.float32)})
    onnx.checker.check_model(opts.optimized_model_filepath)
    trace = sess.end_profiling()
    assert os.path.exists(trace)
    events = json.load(open(trace))
    assert {e["args"]["op_name"] for e in events} >= {"Add", "Relu", "ReduceSum"}


def test_accepts_path_and_pathlike(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_model(), path)
    for arg in (str(path), path):
        out = graft.InferenceSession(arg).run(["total"], {"x": np.ones((1, 3), np.float32)})[0]
        assert out.shape == () and out.dtype == np.float32
        assert out == pytest.approx(2.0 + 0.0 + 1.5)


def test_string_and_bool_tensors():
    graph = helper.make_graph(
        [helper.make_node("Identity", ["s"], ["t"]), helper.make_node("Not", ["b"], ["nb"])], "g",
        [helper.make_tensor_value_info("s", TensorProto.STRING, [2]),
         helper.make_tensor_value_info("b", TensorProto.BOOL, [2])],
        [helper.make_tensor_value_info("t", TensorProto.STRING, [2]),
         helper.make_tensor_value_info("nb", TensorProto.BOOL, [2])])
    sess = graft.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    t, nb = sess.run(None, {"s": np.array(["héllo", "world"], dtype=object), "b": np.array([True, False])})
    assert list(t) == ["héllo", "world"]
    assert list(nb) == [False, True]


def test_backend_interface():
    import graft.backend as backend

    assert backend.supports_device("CPU") and not backend.supports_device("CUDA")
    model = _model()
    x = np.ones((2, 3), np.float32)
    rep = backend.prepare(model)
    total, copy = rep.run([x])
    assert total == pytest.approx(2 * (2.0 + 0.0 + 1.5))
    assert copy.shape == (2, 3)
    (y,) = backend.run_node(helper.make_node("Relu", ["a"], ["b"]), [np.array([-1.0, 2.0], np.float32)])
    np.testing.assert_array_equal(y, [0.0, 2.0])
    (z,) = backend.run_node(helper.make_node("Concat", ["a", "b"], ["c"], axis=0),
                            [np.array([1], np.int64), np.array([2, 3], np.int64)])
    np.testing.assert_array_equal(z, [1, 2, 3])


def test_map_feed_takes_the_declared_types():
    node = helper.make_node("DictVectorizer", ["x"], ["y"], domain="ai.onnx.ml", string_vocabulary=["a", "b", "c"])
    x = helper.make_value_info("x", helper.make_map_type_proto(
        TensorProto.STRING, helper.make_tensor_type_proto(TensorProto.FLOAT, None)))
    graph = helper.make_graph([node], "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("ai.onnx.ml", 3)])
    sess = graft.InferenceSession(model.SerializeToString())
    assert sess.get_inputs()[0].type == "map(string,tensor(float))"
    (y,) = sess.run(None, {"x": {"a": 1.5, "c": 2.0}})  # Python floats arrive as float64
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[1.5, 0.0, 2.0]])


def _matmul_chain(depth: int) -> onnx.ModelProto:
    w = numpy_helper.from_array(
        np.random.default_rng(1).standard_normal((32, 32)).astype(np.float32) * 0.2, "w")
    names = ["x"] + [f"m{i}" for i in range(depth - 1)] + ["y"]
    nodes = [helper.make_node("MatMul", [names[i], "w"], [names[i + 1]]) for i in range(depth)]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_memory_pattern_plans_the_peak_and_keeps_the_results():
    data = _matmul_chain(6).SerializeToString()
    assert graft.SessionOptions().enable_mem_pattern  # onnxruntime's default
    off = graft.SessionOptions()
    off.enable_mem_pattern = False
    plain, planned = graft.InferenceSession(data, off), graft.InferenceSession(data)
    assert planned.planned_peak_bytes() == {}
    rng = np.random.default_rng(2)
    product = 8 * 32 * 4  # one intermediate of a batch of 8
    for batch in (8, 3, 8):
        x = rng.standard_normal((batch, 32)).astype(np.float32)
        want = plain.run(None, {"x": x})[0]
        for _ in range(2):  # recorded, then planned
            np.testing.assert_array_equal(planned.run(None, {"x": x})[0], want)
        if batch == 8:
            # Five intermediates, each read only by the next MatMul: two buffers take turns.
            assert planned.planned_peak_bytes() == {"Cpu": 2 * product}
    assert plain.planned_peak_bytes() == {}
