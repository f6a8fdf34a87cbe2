"""SessionOptions, RunOptions and the session's information calls with onnxruntime's names,
checked against the behaviour onnxruntime documents (and onnxruntime itself where it runs)."""

import os
import threading
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import graft

from .models import long_model, model, mul_model

X = np.array([[1, 2], [3, 4], [5, 6]], np.float32)


def test_config_entries_keep_unknown_keys_and_refuse_bad_values_of_known_ones():
    so = graft.SessionOptions()
    so.add_session_config_entry("some.provider.knob", "anything")
    assert so.get_session_config_entry("some.provider.knob") == "anything"
    so.add_session_config_entry("session.disable_prepacking", "1")
    with pytest.raises(RuntimeError, match="session.disable_prepacking.*'yes'"):
        so.add_session_config_entry("session.disable_prepacking", "yes")
    with pytest.raises(RuntimeError, match="min_size_in_bytes.*integer"):
        so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "-3")
    with pytest.raises(RuntimeError, match="does not have configuration with key: nope"):
        so.get_session_config_entry("nope")
    ro = graft.RunOptions()
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    assert ro.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"


def test_add_initializer_overrides_the_model_weight():
    so = graft.SessionOptions()
    weight = np.array([[2, 1], [4, 3], [6, 5]], np.float32)
    so.add_initializer("W", graft.OrtValue.ortvalue_from_numpy(weight))
    (y,) = graft.InferenceSession(mul_model().SerializeToString(), so).run(None, {"X": X})
    np.testing.assert_array_equal(y, X * weight)
    so.add_initializer("nope", graft.OrtValue.ortvalue_from_numpy(weight))
    with pytest.raises(ValueError, match="no initializer 'nope'"):
        graft.InferenceSession(mul_model().SerializeToString(), so)


def _external_model(tmp_path):
    m = mul_model()
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", "24")):
        w.external_data.add(key=key, value=value)
    path = tmp_path / "model.onnx"
    onnx.save(m, path)
    return path


def test_external_initializers_from_memory_and_from_values(tmp_path):
    path = _external_model(tmp_path)  # weights.bin is nowhere on disk
    weight = np.array([[1, 0], [0, 1], [2, 2]], np.float32)
    so = graft.SessionOptions()
    so.add_external_initializers_from_files_in_memory(["weights.bin"], [weight.tobytes()], [weight.nbytes])
    np.testing.assert_array_equal(graft.InferenceSession(str(path), so).run(None, {"X": X})[0], X * weight)
    so = graft.SessionOptions()
    so.add_external_initializers(["W"], [graft.OrtValue.ortvalue_from_numpy(weight)])
    np.testing.assert_array_equal(graft.InferenceSession(str(path), so).run(None, {"X": X})[0], X * weight)
    so = graft.SessionOptions()
    so.add_external_initializers_from_files_in_memory(["weights.bin"], [weight.tobytes()[:8]], [8])
    with pytest.raises(ValueError, match="'W'.*outside the 8 bytes"):
        graft.InferenceSession(str(path), so)


def test_free_dimension_overrides_fix_input_shapes():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 5])
    x.type.tensor_type.shape.dim[0].denotation = "DATA_BATCH"
    m = model([helper.make_node("Abs", ["x"], ["y"])], [x],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 5])])
    so = graft.SessionOptions()
    so.add_free_dimension_override_by_denotation("DATA_BATCH", 3)
    so.add_free_dimension_override_by_name("seq", 4)
    sess = graft.InferenceSession(m.SerializeToString(), so)
    assert sess.get_inputs()[0].shape == [3, 4, 5]
    with pytest.raises(graft.InvalidArgument, match="dimension 0"):
        sess.run(None, {"x": np.zeros((2, 4, 5), np.float32)})
    with pytest.raises(RuntimeError, match="positive"):
        so.add_free_dimension_override_by_name("seq", 0)


def test_terminate_stops_a_run_in_progress_and_the_session_still_works():
    # 2000 MatMuls of 256 x 256: seconds of work, stopped after a tenth of a second (a run that
    # has not started by then stops before its first node).
    sess = graft.InferenceSession(long_model(steps=2000).SerializeToString())
    x = np.eye(256, dtype=np.float32)
    ro = graft.RunOptions()
    timer = threading.Timer(0.1, lambda: setattr(ro, "terminate", True))
    started = time.perf_counter()
    timer.start()
    with pytest.raises(graft.Fail, match="terminate flag"):
        sess.run(None, {"X": x}, ro)
    stopped = time.perf_counter() - started
    timer.join()
    with pytest.raises(graft.Fail, match="terminate flag"):  # still set: the next run stops at once
        sess.run(None, {"X": x}, ro)
    ro.terminate = False
    started = time.perf_counter()
    np.testing.assert_allclose(sess.run(None, {"X": x}, ro)[0], np.full((256, 256), 1 / 256, np.float32), rtol=1e-4)
    assert stopped < time.perf_counter() - started  # the stopped run did not run to the end


def test_set_providers_and_provider_options():
    sess = graft.InferenceSession(mul_model().SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(RuntimeError, match="Unknown Provider Type: InvalidProvider"):
        sess.set_providers(["InvalidProvider"])
    sess.set_providers(["CPUExecutionProvider"])
    assert sess.get_provider_options() == {"CPUExecutionProvider": {}}
    assert graft.get_all_providers()[-1] == "CPUExecutionProvider"
    np.testing.assert_array_equal(sess.run(None, {"X": X})[0], X * X)


def test_check_and_normalize_provider_args_as_onnxruntime():
    from graft.capi.onnxruntime_inference_collection import check_and_normalize_provider_args as mine
    from onnxruntime.capi.onnxruntime_inference_collection import check_and_normalize_provider_args as theirs

    cases = [(None, None), (["a"], None), ([("a", {1: 2}), "b"], None), (["a", "b"], [{1: 2}, {}])]
    for providers, options in cases:
        assert mine(providers, options, ["a", "b", "c"]) == theirs(providers, options, ["a", "b", "c"])
    for providers, options in ((3, None), ([3], None), (["a"], 3), (["a"], ["x"]), (["a", "b"], [{}]),
                               ([("a", {1: 2})], [{3: 4}])):
        with pytest.raises(ValueError):
            mine(providers, options, ["a"])


def test_model_metadata_matches_onnxruntime():
    m = mul_model(producer_name="maker", domain="example.org", model_version=7, doc_string="what it does",
                  graph_name="mul_graph", graph_doc="the graph")
    helper.set_model_props(m, {"author": "someone"})
    mine = graft.InferenceSession(m.SerializeToString()).get_modelmeta()
    theirs = ort.InferenceSession(m.SerializeToString()).get_modelmeta()
    for field in ("producer_name", "graph_name", "graph_description", "domain", "description", "version",
                  "custom_metadata_map"):
        assert getattr(mine, field) == getattr(theirs, field), field


def test_profiling_start_time_and_trace(tmp_path):
    so = graft.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "trace")
    before = time.time_ns()
    sess = graft.InferenceSession(mul_model().SerializeToString(), so)
    start = sess.get_profiling_start_time_ns()
    assert before <= start <= time.time_ns()
    sess.run(None, {"X": X})
    path = sess.end_profiling()
    assert os.path.dirname(path) == str(tmp_path) and '"name":"mul_0"' in open(path).read()
    plain = graft.InferenceSession(mul_model().SerializeToString())
    assert plain.get_profiling_start_time_ns() == 0 and plain.end_profiling() == ""


def test_run_async_calls_back_with_outputs_or_the_error():
    sess = graft.InferenceSession(mul_model().SerializeToString())
    done, results = threading.Event(), []

    def callback(outputs, user_data, error):
        results.append((outputs, user_data, error))
        done.set()

    sess.run_async(["Y"], {"X": X}, callback, "mine")
    assert done.wait(10)
    outputs, data, error = results[0]
    assert error == "" and data == "mine"
    np.testing.assert_array_equal(outputs[0], X * X)
    done.clear()
    sess.run_async(["Y"], {"X": X[:2]}, callback, None)
    assert done.wait(10)
    assert results[1][0] is None and "dimension 0" in results[1][2]


def test_provider_assignment_needs_its_config_entry():
    m = model([helper.make_node("Add", ["a", "b"], ["c"], name="add_0"),
               helper.make_node("Mul", ["c", "b"], ["d"], name="mul_0")],
              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in "ab"],
              [helper.make_tensor_value_info("d", TensorProto.FLOAT, [2])])
    with pytest.raises(graft.Fail, match="record_ep_graph_assignment_info"):
        graft.InferenceSession(m.SerializeToString()).get_provider_graph_assignment_info()
    so = graft.SessionOptions()
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    so.graph_optimization_level = graft.GraphOptimizationLevel.ORT_DISABLE_ALL
    groups = graft.InferenceSession(m.SerializeToString(), so).get_provider_graph_assignment_info()
    assert [(g.ep_name, [f"{n.domain}:{n.op_type}/{n.name}" for n in g.get_nodes()]) for g in groups] == [
        ("CPUExecutionProvider", [":Add/add_0"]), ("CPUExecutionProvider", [":Mul/mul_0"])]


def test_missing_inputs_raise_as_onnxruntime():
    m = model([helper.make_node("And", ["a", "b"], ["c"])],
              [helper.make_tensor_value_info(n, TensorProto.BOOL, [2]) for n in "ab"],
              [helper.make_tensor_value_info("c", TensorProto.BOOL, [2])])
    feeds = {"a": np.array([True, False])}
    messages = []
    for engine in (graft, ort):
        with pytest.raises(ValueError) as error:
            engine.InferenceSession(m.SerializeToString()).run(None, feeds)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


def test_optimized_model_with_external_initializers(tmp_path):
    so = graft.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "opt.bin")
    so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "16")
    graft.InferenceSession(mul_model().SerializeToString(), so)
    assert (tmp_path / "opt.bin").stat().st_size == 24
    reloaded = graft.InferenceSession(str(tmp_path / "opt.onnx"))
    np.testing.assert_array_equal(reloaded.run(None, {"X": X})[0], X * X)


def test_ir3_models_whose_initializers_are_not_inputs_load_as_in_onnxruntime():
    m = mul_model()
    m.ir_version = 3
    m.opset_import[0].version = 7
    mine = graft.InferenceSession(m.SerializeToString())
    assert [i.name for i in mine.get_inputs()] == ["X"]
    np.testing.assert_array_equal(mine.run(None, {"X": X})[0], ort.InferenceSession(m.SerializeToString()).run(
        None, {"X": X})[0])


def test_load_config_from_model(monkeypatch):
    m = mul_model()
    helper.set_model_props(m, {"ort_config": '{"session_options": {"intra_op_num_threads": 2, '
                                             '"inter_op_num_threads": 5, "enable_profiling": false}}'})
    monkeypatch.setenv("ORT_LOAD_CONFIG_FROM_MODEL", "1")
    options = graft.InferenceSession(m.SerializeToString()).get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 5)
    helper.set_model_props(m, {"ort_config": '{"session_options": {"bogus": 1, "graph_optimization_level": 1}}'})
    with pytest.warns(UserWarning, match="'bogus'.*ignored"):
        options = graft.InferenceSession(m.SerializeToString()).get_session_options()
    assert options.graph_optimization_level == graft.GraphOptimizationLevel.ORT_ENABLE_BASIC
    helper.set_model_props(m, {"ort_config": '{"session_options": {"execution_mode": 7}}'})
    with pytest.raises(RuntimeError, match="unsupported value 7 for session option 'execution_mode'"):
        graft.InferenceSession(m.SerializeToString())
    helper.set_model_props(m, {"ort_config": '{"session_options": '})
    with pytest.raises(RuntimeError, match="does not parse"):
        graft.InferenceSession(m.SerializeToString())


def test_module_level_information():
    assert graft.get_version_string() == graft.__version__
    assert "Build Info" in graft.get_build_info()
    assert graft.get_device() in ("CPU", "GPU")
    graft.disable_telemetry_events()
    graft.enable_telemetry_events()
    graft.set_default_logger_severity(3)
    with pytest.raises(RuntimeError, match="severity"):
        graft.set_default_logger_severity(7)
    graft.set_default_logger_severity(2)


def test_devices_and_memory_descriptions_match_onnxruntime():
    for name in ("cpu", "cuda"):
        mine, theirs = graft.OrtDevice.make(name, 0), ort.OrtDevice.make(name, 0)
        for method in ("device_id", "device_type", "device_vendor_id", "device_mem_type"):
            assert getattr(mine, method)() == getattr(theirs, method)(), (name, method)
    mine = graft.OrtMemoryInfo("Cpu", graft.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, graft.OrtMemType.DEFAULT)
    theirs = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    assert mine.name == theirs.name
    for field in ("device_id", "mem_type", "allocator_type", "device_mem_type", "device_vendor_id"):
        assert int(getattr(mine, field)) == int(getattr(theirs, field)), field
    cfg = graft.OrtArenaCfg({"max_mem": 16, "arena_extend_strategy": 1})
    assert (cfg.max_mem, cfg.arena_extend_strategy, cfg.initial_chunk_size_bytes) == (16, 1, -1)
    with pytest.raises(ValueError, match="Invalid OrtArenaCfg option: bogus"):
        graft.OrtArenaCfg({"bogus": 1})


def test_sparse_tensors_match_their_dense_form():
    dense = np.zeros((4, 5), np.float32)
    dense[1, 2], dense[3, 0] = 1.5, -2.0
    coo = graft.SparseTensor.sparse_coo_from_numpy([4, 5], np.array([1.5, -2.0], np.float32),
                                                  np.array([7, 15], np.int64))
    assert coo.format() == graft.OrtSparseFormat.ORT_SPARSE_COO and coo.data_type() == "sparse_tensor(float)"
    np.testing.assert_array_equal(coo.densify(), dense)
    assert not coo.values().flags.writeable
    csr = graft.SparseTensor.sparse_csr_from_numpy([4, 5], np.array([1.5, -2.0], np.float32),
                                                  np.array([2, 0], np.int64), np.array([0, 0, 1, 1, 2], np.int64))
    np.testing.assert_array_equal(csr.densify(), dense)
    np.testing.assert_array_equal(csr.as_csrc_view().outer(), [0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="outside the dense shape"):
        graft.SparseTensor.sparse_coo_from_numpy([2, 2], np.ones(1, np.float32), np.array([4], np.int64))
    with pytest.raises(RuntimeError):
        coo.to_cuda(graft.OrtDevice.make("cuda", 0))


def test_sparse_inputs_and_outputs_run():
    values = np.array([1.0, 2.0, 3.0], np.float32)
    constant = helper.make_node("Constant", [], ["s"], sparse_value=helper.make_sparse_tensor(
        numpy_helper.from_array(values, "v"), numpy_helper.from_array(np.array([2, 3, 5], np.int64), "i"), [3, 3]))
    m = model([constant], [], [helper.make_sparse_tensor_value_info("s", TensorProto.FLOAT, [3, 3])])
    (out,) = graft.InferenceSession(m.SerializeToString()).run_with_ort_values(None, {})
    sparse = out.as_sparse_tensor()
    np.testing.assert_array_equal(sparse.values(), values)
    np.testing.assert_array_equal(sparse.as_coo_view().indices(), [2, 3, 5])
    a = np.zeros((3, 4), np.float32)
    a[0, 1], a[2, 3] = 2.0, -1.0
    b = np.arange(8, dtype=np.float32).reshape(4, 2)
    mm = model([helper.make_node("SparseToDenseMatMul", ["A", "B"], ["Y"], domain="com.microsoft", alpha=0.5)],
               [helper.make_sparse_tensor_value_info("A", TensorProto.FLOAT, [3, 4]),
                helper.make_tensor_value_info("B", TensorProto.FLOAT, [4, 2])],
               [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 2])])
    mm.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    sparse_a = graft.SparseTensor.sparse_coo_from_numpy([3, 4], a[a != 0], np.flatnonzero(a).astype(np.int64))
    (y,) = graft.InferenceSession(mm.SerializeToString()).run_with_ort_values(
        ["Y"], {"A": graft.OrtValue.ort_value_from_sparse_tensor(sparse_a), "B": graft.OrtValue.ortvalue_from_numpy(b)})
    np.testing.assert_allclose(y.numpy(), 0.5 * a @ b)


def test_shared_allocator_is_registered_once():
    info = graft.OrtMemoryInfo("Cpu", graft.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, graft.OrtMemType.CPU_INPUT)
    graft.create_and_register_allocator(info, graft.OrtArenaCfg(0, -1, -1, -1))
    with pytest.raises(RuntimeError, match="already been registered"):
        graft.create_and_register_allocator(info, None)
    so = graft.SessionOptions()
    so.add_session_config_entry("session.use_env_allocators", "1")
    np.testing.assert_array_equal(graft.InferenceSession(mul_model().SerializeToString(), so).run(None, {"X": X})[0],
                                  X * X)


def test_only_execute_path_to_fetches_skips_the_other_branches():
    # Y needs only Neg; Z's Reshape fails for the shape fed, so a run reaches Y alone only when
    # the other branch is left out.
    m = model([helper.make_node("Neg", ["X"], ["Y"]), helper.make_node("Reshape", ["X", "shape"], ["Z"])],
              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 2]),
               helper.make_tensor_value_info("shape", TensorProto.INT64, [1])],
              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 2]),
               helper.make_tensor_value_info("Z", TensorProto.FLOAT, None)])
    sess = graft.InferenceSession(m.SerializeToString())
    feeds = {"X": X, "shape": np.array([7], np.int64)}
    with pytest.raises(graft.Fail, match="Reshape"):
        sess.run(["Y"], feeds)
    ro = graft.RunOptions()
    ro.only_execute_path_to_fetches = True
    np.testing.assert_array_equal(sess.run(["Y"], feeds, ro)[0], -X)
    with pytest.raises(graft.Fail, match="Reshape"):
        sess.run(["Y", "Z"], feeds, ro)


def test_model_edits_keep_the_checks_on_external_data(tmp_path):
    # A model that asks for data outside its folder is refused with model edits as without them.
    m = mul_model()
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="../outside.bin")
    (tmp_path / "outside.bin").write_bytes(np.ones(6, np.float32).tobytes())
    (tmp_path / "model").mkdir()
    onnx.save(m, tmp_path / "model" / "m.onnx")
    so = graft.SessionOptions()
    so.add_free_dimension_override_by_name("batch", 1)
    for options in (None, so):
        with pytest.raises(graft.InvalidArgument, match=r"'\.\.'"):
            graft.InferenceSession(str(tmp_path / "model" / "m.onnx"), options)


def test_optimized_model_external_file_stays_beside_the_model(tmp_path):
    so = graft.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "../escape.bin")
    with pytest.raises(ValueError, match="inside the optimized model's folder"):
        graft.InferenceSession(mul_model().SerializeToString(), so)
    assert not (tmp_path.parent / "escape.bin").exists()
    so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "small.bin")
    so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1000")
    graft.InferenceSession(mul_model().SerializeToString(), so)
    assert (tmp_path / "small.bin").stat().st_size == 0  # nothing reached the size; the file is there
    np.testing.assert_array_equal(graft.InferenceSession(str(tmp_path / "opt.onnx")).run(None, {"X": X})[0], X * X)
