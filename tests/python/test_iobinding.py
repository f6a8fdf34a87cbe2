"""onnxruntime's device-facing Python API on the host: provider options, OrtValue, DLPack and
IOBinding, each compared with a plain InferenceSession.run (tests/python/gpu runs them on a GPU)."""

import gc

import ml_dtypes
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import graft
from graft.training import TrainingSession


def _model() -> bytes:
    """y = x @ w, z = relu(y + bias), n = argmax(z): two float outputs and an int64 one."""
    bias = numpy_helper.from_array(np.array([0.5, -1.0, 0.25, 0.0], np.float32), "bias")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["y"]),
        helper.make_node("Add", ["y", "bias"], ["s"]),
        helper.make_node("Relu", ["s"], ["z"]),
        helper.make_node("ArgMax", ["z"], ["n"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("n", TensorProto.INT64, ["batch"])], [bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model.SerializeToString()


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)


def _expected(x, w):
    return graft.InferenceSession(_model()).run(None, {"x": x, "w": w})


# Provider options.

def test_provider_options_reach_the_provider():
    # The CPU provider takes no options: an unknown one is refused by name, so the options got there.
    with pytest.raises(ValueError, match="bogus"):
        graft.InferenceSession(_model(), providers=[("CPUExecutionProvider", {"bogus": 1})])
    with pytest.raises(ValueError, match="bogus"):
        graft.InferenceSession(_model(), providers=["CPUExecutionProvider"], provider_options=[{"bogus": "1"}])
    sess = graft.InferenceSession(_model(), providers=[("CPUExecutionProvider", {})])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.get_provider_options() == {"CPUExecutionProvider": {}}


def test_provider_arguments_are_checked_as_onnxruntime_does():
    with pytest.raises(ValueError, match="same length"):
        graft.InferenceSession(_model(), providers=["CPUExecutionProvider"], provider_options=[{}, {}])
    with pytest.raises(ValueError, match="Only string values"):
        graft.InferenceSession(_model(), providers=[("CPUExecutionProvider", {})], provider_options=[{}])
    with pytest.raises(ValueError, match="strings or \\(string, dict\\) tuples"):
        graft.InferenceSession(_model(), providers=[("CPUExecutionProvider",)])


@pytest.mark.skipif("CUDAExecutionProvider" in graft.get_available_providers(), reason="a GPU is present")
def test_unavailable_provider_is_left_out_with_its_options():
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        sess = graft.InferenceSession(_model(), providers=[("CUDAExecutionProvider", {"device_id": 0}),
                                                           "CPUExecutionProvider"])
    assert sess.get_provider_options() == {"CPUExecutionProvider": {}}


def test_training_session_takes_the_provider_forms(tmp_path):
    w = numpy_helper.from_array(np.full((3, 1), 0.5, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("ReduceSum", ["p"], ["loss"], keepdims=0)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = np.ones((2, 3), np.float32)
    plain = TrainingSession(model, loss="loss", optimizer="sgd", lr=0.1)
    tupled = TrainingSession(model, loss="loss", optimizer="sgd", lr=0.1,
                             providers=[("CPUExecutionProvider", {})])
    assert tupled.train_step({"x": x}) == plain.train_step({"x": x})
    np.testing.assert_array_equal(tupled.state()["w"], plain.state()["w"])
    with pytest.raises(ValueError, match="bogus"):
        TrainingSession(model, loss="loss", optimizer="sgd", providers=["CPUExecutionProvider"],
                        provider_options=[{"bogus": "1"}])


# OrtValue.

def test_ortvalue_from_numpy_shares_the_array(data):
    x, _ = data
    v = graft.OrtValue.ortvalue_from_numpy(x)
    assert v.is_tensor() and v.has_value()
    assert v.shape() == [5, 3] and v.data_type() == "tensor(float)" and v.element_type() == 1  # onnx.TensorProto.FLOAT
    assert v.device_name() == "cpu" and v.data_ptr() == x.ctypes.data
    np.testing.assert_array_equal(v.numpy(), x)
    del x
    gc.collect()
    assert v.numpy().shape == (5, 3)  # the OrtValue keeps the array alive


@pytest.mark.parametrize("array", [
    np.arange(6, dtype=np.int64).reshape(2, 3),
    np.array([True, False, True]),
    np.arange(4, dtype=np.float16),
    np.arange(4).astype(ml_dtypes.bfloat16),
    np.array(["a", "bc"], dtype=object),
    np.array(3.5, np.float64),
], ids=["int64", "bool", "float16", "bfloat16", "string", "scalar"])
def test_ortvalue_round_trips_numpy(array):
    v = graft.OrtValue.ortvalue_from_numpy(array)
    got = v.numpy()
    assert got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)


def test_ortvalue_rejects_bad_devices():
    with pytest.raises(ValueError, match="device_type must be one of cpu, cuda, got 'tpu'"):
        graft.OrtValue.ortvalue_from_numpy(np.ones(2, np.float32), "tpu")
    if "CUDAExecutionProvider" not in graft.get_available_providers():
        with pytest.raises(RuntimeError, match="CUDA"):
            graft.OrtValue.ortvalue_from_numpy(np.ones(2, np.float32), "cuda", 0)


def test_ortvalue_from_shape_and_type_is_zeros():
    v = graft.OrtValue.ortvalue_from_shape_and_type([2, 3], np.int32)
    assert v.data_type() == "tensor(int32)"
    np.testing.assert_array_equal(v.numpy(), np.zeros((2, 3), np.int32))


# DLPack.

def test_dlpack_to_torch_shares_memory_and_outlives_the_ortvalue(data):
    x, _ = data
    v = graft.OrtValue.ortvalue_from_numpy(x.copy())
    assert v.__dlpack_device__() == (1, 0)
    t = torch.from_dlpack(v)
    assert t.data_ptr() == v.data_ptr()
    del v
    gc.collect()
    torch.testing.assert_close(t, torch.tensor(x), rtol=0, atol=0)
    t.mul_(2)  # the memory is still valid and writable
    torch.testing.assert_close(t, torch.tensor(x) * 2, rtol=0, atol=0)


def test_dlpack_from_torch_shares_memory_and_keeps_it_alive():
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    v = graft.OrtValue.from_dlpack(t)
    assert v.data_ptr() == t.data_ptr() and v.shape() == [3, 4]
    t.add_(1)  # shared: graft sees the change
    expected = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    del t
    gc.collect()
    np.testing.assert_array_equal(v.numpy(), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.bool, torch.int64, torch.uint8,
                                   torch.float64, torch.complex64])
def test_dlpack_round_trip_keeps_type_and_values(dtype):
    t = (torch.arange(-3, 9).reshape(3, 4) % 5).to(dtype)
    back = torch.from_dlpack(graft.OrtValue.from_dlpack(t))
    assert back.dtype == dtype and back.data_ptr() == t.data_ptr()
    assert torch.equal(back, t)


def test_dlpack_with_numpy_and_legacy_capsules():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    v = graft.OrtValue.from_dlpack(a)
    assert v.data_ptr() == a.ctypes.data
    np.testing.assert_array_equal(np.from_dlpack(v), a)
    capsule = torch.utils.dlpack.to_dlpack(torch.ones(2, 2))  # a bare v0.8 capsule
    np.testing.assert_array_equal(graft.OrtValue.from_dlpack(capsule).numpy(), np.ones((2, 2), np.float32))
    with pytest.raises(BufferError, match="not an unused DLPack capsule"):
        graft.OrtValue.from_dlpack(capsule)  # consumed already
    legacy = torch.from_dlpack(graft.OrtValue.ortvalue_from_numpy(a).to_dlpack())
    assert legacy.tolist() == a.tolist()


def test_dlpack_refuses_what_it_cannot_describe():
    with pytest.raises(BufferError, match="row-major"):
        graft.OrtValue.from_dlpack(torch.ones(3, 4).t())
    with pytest.raises(BufferError, match="DLPack has no type"):
        graft.OrtValue.ortvalue_from_numpy(np.array(["a"], dtype=object)).__dlpack__()


# IOBinding.

def test_iobinding_cpu_inputs_and_outputs_match_run(data):
    x, w = data
    sess = graft.InferenceSession(_model())
    binding = sess.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_ortvalue_input("w", graft.OrtValue.ortvalue_from_numpy(w))
    binding.bind_output("z")
    binding.bind_output("n", "cpu")
    sess.run_with_iobinding(binding)
    expected = _expected(x, w)
    outs = binding.get_outputs()
    assert [o.device_name() for o in outs] == ["cpu", "cpu"]
    np.testing.assert_allclose(outs[0].numpy(), expected[1], rtol=1e-6)
    np.testing.assert_array_equal(outs[1].numpy(), expected[2])
    z, n = binding.copy_outputs_to_cpu()
    np.testing.assert_allclose(z, expected[1], rtol=1e-6)
    np.testing.assert_array_equal(n, expected[2])


def test_iobinding_with_no_output_bound_returns_all(data):
    x, w = data
    sess = graft.InferenceSession(_model())
    binding = sess.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_cpu_input("w", w)
    sess.run_with_iobinding(binding)
    for got, want in zip(binding.copy_outputs_to_cpu(), _expected(x, w)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_iobinding_buffers_by_address(data):
    x, w = data
    sess = graft.InferenceSession(_model())
    binding = sess.io_binding()
    binding.bind_input("x", "cpu", 0, np.float32, x.shape, x.ctypes.data)
    binding.bind_input("w", "cpu", 0, np.float32, w.shape, w.ctypes.data)
    y = np.full((5, 4), np.nan, np.float32)
    binding.bind_output("y", "cpu", 0, np.float32, y.shape, y.ctypes.data)
    z = graft.OrtValue.ortvalue_from_shape_and_type([5, 4], np.float32)
    binding.bind_ortvalue_output("z", z)
    sess.run_with_iobinding(binding)
    expected = _expected(x, w)
    np.testing.assert_allclose(y, expected[0], rtol=1e-6)  # written into the caller's buffer
    np.testing.assert_allclose(z.numpy(), expected[1], rtol=1e-6)
    assert binding.get_outputs()[1].data_ptr() == z.data_ptr()
    # Bound by address, the inputs are read at each run.
    x *= 2
    sess.run_with_iobinding(binding)
    np.testing.assert_allclose(y, _expected(x, w)[0], rtol=1e-6)


def test_iobinding_clear_and_errors(data):
    x, w = data
    sess = graft.InferenceSession(_model())
    binding = sess.io_binding()
    with pytest.raises(ValueError, match="no input 'X'.*inputs: x, w"):
        binding.bind_cpu_input("X", x)
    with pytest.raises(ValueError, match="no output 'out'.*outputs: y, z, n"):
        binding.bind_output("out")
    with pytest.raises(ValueError, match="device_type must be one of cpu, cuda, got 'gpu'"):
        binding.bind_output("y", "gpu")
    with pytest.raises(ValueError, match="needs its element_type and shape"):
        binding.bind_output("y", "cpu", 0, buffer_ptr=x.ctypes.data)
    binding.bind_cpu_input("x", x)
    binding.bind_cpu_input("w", w)
    wrong = graft.OrtValue.ortvalue_from_shape_and_type([4, 4], np.float32)
    binding.bind_ortvalue_output("y", wrong)
    with pytest.raises(ValueError, match="output 'y' is a float tensor of shape \\[5, 4\\].*\\[4, 4\\]"):
        sess.run_with_iobinding(binding)
    binding.clear_binding_outputs()
    binding.bind_output("n")
    binding.clear_binding_inputs()
    binding.bind_cpu_input("x", x)
    with pytest.raises(ValueError, match="'w'"):
        sess.run_with_iobinding(binding)  # w was cleared
    binding.bind_cpu_input("w", w)
    sess.run_with_iobinding(binding)
    assert len(binding.get_outputs()) == 1
    np.testing.assert_array_equal(binding.get_outputs()[0].numpy(), _expected(x, w)[2])


def test_run_with_ort_values_matches_run(data):
    x, w = data
    sess = graft.InferenceSession(_model())
    feeds = {"x": graft.OrtValue.ortvalue_from_numpy(x), "w": graft.OrtValue.from_dlpack(torch.tensor(w))}
    outs = sess.run_with_ort_values(["n", "z"], feeds)
    expected = _expected(x, w)
    np.testing.assert_array_equal(outs[0].numpy(), expected[2])
    np.testing.assert_allclose(outs[1].numpy(), expected[1], rtol=1e-6)
