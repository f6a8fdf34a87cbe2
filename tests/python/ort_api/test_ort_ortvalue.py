"""OrtValue with onnxruntime's interface, checked against NumPy and onnxruntime itself."""

import gc

import ml_dtypes
import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

import graft

from .models import identity_model, model, mul_model

X = np.array([[1, 2], [3, 4], [5, 6]], np.float32)


def test_from_numpy_shares_memory_and_keeps_the_array_alive():
    arr = X.copy()
    value = graft.OrtValue.ortvalue_from_numpy(arr)
    assert value.data_ptr() == arr.ctypes.data
    arr[0, 0] = 42.0  # the same memory: the OrtValue sees the change
    assert value.numpy()[0, 0] == 42.0
    del arr
    gc.collect()
    np.testing.assert_array_equal(value.numpy()[1], [3, 4])  # still valid without the array


def test_describes_itself_as_onnxruntime_does():
    mine, theirs = graft.OrtValue.ortvalue_from_numpy(X), ort.OrtValue.ortvalue_from_numpy(X)
    for method in ("shape", "data_type", "element_type", "is_tensor", "device_name", "tensor_size_in_bytes",
                   "has_value"):
        assert getattr(mine, method)() == getattr(theirs, method)(), method


def test_from_shape_and_type_takes_numpy_types_and_onnx_codes():
    a = graft.OrtValue.ortvalue_from_shape_and_type([2, 3], np.int64)
    b = graft.OrtValue.ortvalue_from_shape_and_type([2, 3], TensorProto.BFLOAT16)
    assert a.data_type() == "tensor(int64)" and a.shape() == [2, 3]
    assert b.element_type() == TensorProto.BFLOAT16 and b.numpy().dtype == ml_dtypes.bfloat16
    with pytest.raises(ValueError, match="not an ONNX element type"):
        graft.OrtValue.ortvalue_from_shape_and_type([2], 999)
    with pytest.raises(ValueError, match="device_type"):
        graft.OrtValue.ortvalue_from_shape_and_type([2], np.float32, "tpu")


def test_with_onnx_type_reads_the_bits_as_that_type():
    bits = np.array([0x3F80, 0x4000], np.uint16)  # bfloat16 1.0 and 2.0
    value = graft.OrtValue.ortvalue_from_numpy_with_onnx_type(bits, TensorProto.BFLOAT16)
    assert value.element_type() == TensorProto.BFLOAT16
    np.testing.assert_array_equal(value.numpy().astype(np.float32), [1.0, 2.0])
    with pytest.raises(Exception, match="item size"):
        graft.OrtValue.ortvalue_from_numpy_with_onnx_type(np.zeros(2, np.float32), TensorProto.BFLOAT16)


def test_array_protocol_is_zero_copy():
    value = graft.OrtValue.ortvalue_from_numpy(X)
    assert np.asarray(value).ctypes.data == value.data_ptr()
    np.testing.assert_array_equal(np.asarray(value, dtype=np.float64), X.astype(np.float64))


def test_update_inplace_writes_the_tensor_memory():
    arr = np.zeros((3, 2), np.float32)
    value = graft.OrtValue.ortvalue_from_numpy(arr)
    value.update_inplace(X)
    np.testing.assert_array_equal(arr, X)
    with pytest.raises(graft.InvalidArgument, match="shape"):
        value.update_inplace(np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, np.float16, np.uint8])
def test_dlpack_round_trips_without_copies(dtype):
    arr = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    value = graft.OrtValue.ortvalue_from_numpy(arr)
    assert value.__dlpack_device__() == (1, 0)
    back = np.from_dlpack(value)
    assert back.dtype == arr.dtype and back.ctypes.data == value.data_ptr()
    again = graft.OrtValue.from_dlpack(value)
    assert again.data_ptr() == value.data_ptr() and again.numpy().dtype == arr.dtype
    t = torch.from_dlpack(value)
    np.testing.assert_array_equal(t.numpy(), arr)
    from_torch = graft.OrtValue.from_dlpack(torch.as_tensor(arr).clone())
    np.testing.assert_array_equal(from_torch.numpy(), arr)


@pytest.mark.parametrize("shape", [(0,), (4, 0), (1, 8, 0, 128)])
def test_dlpack_takes_zero_size_tensors(shape):
    value = graft.OrtValue.from_dlpack(np.zeros(shape, np.float32))
    assert value.shape() == list(shape)
    assert graft.OrtValue.from_dlpack(value.to_dlpack()).shape() == list(shape)


def test_uint8_capsule_can_be_read_as_bool():
    from graft.capi import _pybind_state as C

    capsule = np.array([1, 0, 1], np.uint8).__dlpack__()
    assert C.is_dlpack_uint8_tensor(capsule)
    value = graft.OrtValue.from_dlpack(capsule, is_bool_tensor=True)
    assert value.numpy().dtype == np.bool_ and value.numpy().tolist() == [True, False, True]


def test_run_with_ort_values_matches_onnxruntime():
    data = mul_model().SerializeToString()
    mine = graft.InferenceSession(data).run_with_ort_values(["Y"], {"X": graft.OrtValue.ortvalue_from_numpy(X)})
    theirs = ort.InferenceSession(data).run_with_ort_values(["Y"], {"X": ort.OrtValue.ortvalue_from_numpy(X)})
    assert isinstance(mine[0], graft.OrtValue)
    np.testing.assert_array_equal(mine[0].numpy(), theirs[0].numpy())


def test_native_run_returns_an_ortvalue_vector():
    sess = graft.InferenceSession(mul_model().SerializeToString())
    vector = sess._sess.run_with_ort_values({"X": graft.OrtValue.ortvalue_from_numpy(X)._get_c_value()}, ["Y"],
                                            graft.RunOptions())
    assert isinstance(vector, graft.OrtValueVector) and len(vector) == 1
    np.testing.assert_array_equal(vector[0].numpy(), X * X)
    fetches = graft.OrtValueVector()
    sess.run_with_ortvaluevector(graft.RunOptions(), ["X"], [graft.OrtValue.ortvalue_from_numpy(X)], ["Y"], fetches,
                                 [])
    np.testing.assert_array_equal(fetches[0].numpy(), X * X)


def test_sequence_and_map_outputs():
    seq = model([helper.make_node("SequenceConstruct", ["a", "b"], ["s"])],
                [helper.make_tensor_value_info(n, TensorProto.INT64, [2]) for n in "ab"],
                [helper.make_tensor_sequence_value_info("s", TensorProto.INT64, None)])
    out = graft.InferenceSession(seq.SerializeToString()).run_with_ort_values(
        None, {"a": graft.OrtValue.ortvalue_from_numpy(np.array([1, 2])),
               "b": graft.OrtValue.ortvalue_from_numpy(np.array([3, 4]))})[0]
    assert not out.is_tensor() and out.is_tensor_sequence() and out.data_type() == "seq(tensor(int64))"
    assert [a.tolist() for a in out.numpy()] == [[1, 2], [3, 4]]


def test_sparse_tensor_in_an_ortvalue():
    sparse = graft.SparseTensor.sparse_coo_from_numpy([3, 3], np.array([1.0, 2.0], np.float32),
                                                     np.array([1, 5], np.int64), graft.OrtDevice.make("cpu", 0))
    value = graft.OrtValue.ort_value_from_sparse_tensor(sparse)
    assert value.is_sparse_tensor() and not value.is_tensor()
    assert value.data_type() == "sparse_tensor(float)" and value.shape() == [3, 3]
    assert value.as_sparse_tensor() is sparse
    with pytest.raises(RuntimeError, match="sparse"):
        value.numpy()


def test_bool_and_string_inputs_match_onnxruntime():
    for elem, arr in ((TensorProto.BOOL, np.array([[True, False]])),
                      (TensorProto.STRING, np.array([["a", "β"]], dtype=object))):
        data = identity_model(elem).SerializeToString()
        mine = graft.InferenceSession(data).run(None, {"X": arr})[0]
        theirs = ort.InferenceSession(data).run(None, {"X": arr})[0]
        assert mine.tolist() == theirs.tolist()
