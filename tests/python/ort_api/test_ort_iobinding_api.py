"""IOBinding with onnxruntime's interface: inputs and outputs bound to memory before a run."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

import graft
from graft.capi._pybind_state import OrtDevice, SessionIOBinding

from .models import identity_model, mul_model

X = np.array([[1, 2], [3, 4], [5, 6]], np.float32)


def test_bind_cpu_input_and_output_left_where_made():
    sess = graft.InferenceSession(mul_model().SerializeToString())
    binding = sess.io_binding()
    binding.bind_cpu_input("X", X)
    binding.bind_output("Y")
    sess.run_with_iobinding(binding)
    binding.synchronize_outputs()
    (out,) = binding.get_outputs()
    assert out.device_name() == "cpu"
    np.testing.assert_array_equal(out.numpy(), X * X)
    np.testing.assert_array_equal(binding.copy_outputs_to_cpu()[0], X * X)


def test_bind_by_pointer_into_a_preallocated_output():
    sess = graft.InferenceSession(mul_model().SerializeToString())
    binding = sess.io_binding()
    x = X.copy()
    y = np.zeros((3, 2), np.float32)
    binding.bind_input("X", "cpu", 0, np.float32, [3, 2], x.ctypes.data)
    binding.bind_output("Y", "cpu", 0, np.float32, [3, 2], y.ctypes.data)
    binding.synchronize_inputs()
    sess.run_with_iobinding(binding)
    np.testing.assert_array_equal(y, X * X)
    x *= 2  # the binding reads the caller's memory at each run
    sess.run_with_iobinding(binding)
    np.testing.assert_array_equal(y, 2 * X * X)


def test_bind_ortvalues_matches_onnxruntime():
    data = mul_model().SerializeToString()
    results = []
    for engine in (graft, ort):
        sess = engine.InferenceSession(data)
        binding = sess.io_binding()
        out = engine.OrtValue.ortvalue_from_shape_and_type([3, 2], np.float32)
        binding.bind_ortvalue_input("X", engine.OrtValue.ortvalue_from_numpy(X))
        binding.bind_ortvalue_output("Y", out)
        sess.run_with_iobinding(binding)
        results.append(out.numpy())
    np.testing.assert_array_equal(results[0], results[1])


def test_clearing_bindings_and_errors():
    sess = graft.InferenceSession(mul_model().SerializeToString())
    binding = sess.io_binding()
    with pytest.raises(ValueError, match="no input 'Z'"):
        binding.bind_cpu_input("Z", X)
    with pytest.raises(ValueError, match="no output 'Z'"):
        binding.bind_output("Z")
    with pytest.raises(ValueError, match="element_type and shape"):
        binding.bind_output("Y", "cpu", 0, None, None, X.ctypes.data)
    binding.bind_cpu_input("X", X)
    binding.clear_binding_inputs()
    with pytest.raises(graft.InvalidArgument, match="missing"):
        sess.run_with_iobinding(binding)
    binding.bind_cpu_input("X", X)
    binding.bind_output("Y")
    sess.run_with_iobinding(binding)
    binding.clear_binding_outputs()
    assert binding.get_outputs() == []


def test_native_binding_with_devices():
    sess = graft.InferenceSession(identity_model(TensorProto.INT32).SerializeToString())
    cpu = OrtDevice(OrtDevice.cpu(), OrtDevice.default_memory(), 0)
    x = np.arange(8, dtype=np.int32).reshape(4, 2)
    bind = SessionIOBinding(sess._sess)
    bind.bind_ortvalue_input("X", graft.capi._pybind_state.OrtValue.ortvalue_from_numpy(x, cpu))
    bind.bind_output("Y", cpu)
    sess._sess.run_with_iobinding(bind, None)
    outputs = bind.get_outputs()
    assert isinstance(outputs, graft.OrtValueVector)
    np.testing.assert_array_equal(outputs[0].numpy(), x)
