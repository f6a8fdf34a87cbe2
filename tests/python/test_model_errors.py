"""Bad models raise Python exceptions that name the problem; none crashes the process."""

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graft


def _matmul_model(weight_location: str | None = None) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2), "w")
    if weight_location is not None:
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for key, value in (("location", weight_location), ("offset", "0"), ("length", "24")):
            entry = w.external_data.add()
            entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _write_weights(path) -> None:
    np.arange(6, dtype=np.float32).tofile(path)


def test_external_data_inside_folder_loads(tmp_path):
    _write_weights(tmp_path / "w.bin")
    path = tmp_path / "m.onnx"
    onnx.save(_matmul_model("w.bin"), path)
    y = graft.InferenceSession(str(path)).run(None, {"x": np.ones((1, 3), np.float32)})[0]
    np.testing.assert_array_equal(y, np.ones((1, 3), np.float32) @ np.arange(6, dtype=np.float32).reshape(3, 2))


@pytest.mark.parametrize("location, message", [
    ("../outside.bin", "'..'"),
    ("sub/../../outside.bin", "'..'"),
    ("ABSOLUTE", "absolute path"),
    ("link.bin", "symbolic link"),
    ("missing.bin", "not a file"),
])
def test_external_data_outside_folder_is_refused(tmp_path, location, message):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    _write_weights(tmp_path / "outside.bin")
    os.symlink(tmp_path / "outside.bin", model_dir / "link.bin")
    if location == "ABSOLUTE":
        location = str(tmp_path / "outside.bin")
    path = model_dir / "m.onnx"
    with open(path, "wb") as f:
        f.write(_matmul_model(location).SerializeToString())
    with pytest.raises(graft.InvalidArgument, match=message) as info:
        graft.InferenceSession(str(path))
    assert "tensor 'w'" in str(info.value)


def test_external_data_from_bytes_is_refused():
    with pytest.raises(graft.InvalidArgument, match="loaded from bytes"):
        graft.InferenceSession(_matmul_model("w.bin").SerializeToString())


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_file(tmp_path, keep):
    data = _matmul_model().SerializeToString()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(graft.InvalidArgument) as info:
        graft.InferenceSession(str(path))
    assert "truncated" in str(info.value) or "not a valid ONNX model" in str(info.value)


def test_not_a_model(tmp_path):
    path = tmp_path / "text.onnx"
    path.write_text("hello, this is not protobuf")
    with pytest.raises(graft.InvalidArgument, match="could not be parsed|not a valid|no graph"):
        graft.InferenceSession(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(graft.InvalidArgument, match="cannot open model file"):
        graft.InferenceSession(str(tmp_path / "nope.onnx"))


def test_wrong_input_count_names_the_node():
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b", "a"], ["c"], name="bad_add")], "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(graft.InvalidArgument, match="bad_add") as info:
        graft.InferenceSession(model.SerializeToString())
    assert "input size 3" in str(info.value)


def test_undefined_value_names_the_node():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["nowhere"], ["c"], name="r")], "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(graft.InvalidArgument, match="nowhere"):
        graft.InferenceSession(model.SerializeToString())


def test_op_without_kernel_is_named_at_creation():
    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["a"], ["c"], name="f", domain="com.example")], "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.example", 3)])
    with pytest.raises(graft.NotImplemented) as info:
        graft.InferenceSession(model.SerializeToString())
    text = str(info.value)
    assert "Frobnicate" in text and "com.example" in text and "opset 3" in text


def test_bad_feeds_raise():
    sess = graft.InferenceSession(_matmul_model().SerializeToString())
    x = np.ones((1, 3), np.float32)
    with pytest.raises(graft.InvalidArgument, match="invalid input name 'z'"):
        sess.run(None, {"x": x, "z": x})
    with pytest.raises(graft.InvalidArgument, match="input 'x'.*element type"):
        sess.run(None, {"x": x.astype(np.int64)})
    with pytest.raises(graft.InvalidArgument, match="input 'x'.*dimension 1"):
        sess.run(None, {"x": np.ones((1, 4), np.float32)})
    # As onnxruntime: a ValueError listing the missing inputs and those fed.
    with pytest.raises(ValueError, match=r"Required inputs \(\['x'\]\) are missing from input feed \(\[\]\)"):
        sess.run(None, {})
    # The session still works after the failures.
    assert sess.run(None, {"x": x})[0].shape == (1, 2)
