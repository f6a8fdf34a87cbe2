"""LoRA adapters: AdapterFormat round trips, onnxruntime's own adapter files read, and
RunOptions.add_active_adapter feeding the parameters to the model."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import graft

from .models import model


def _params(engine):
    return {"a": engine.OrtValue.ortvalue_from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3)),
            "b": engine.OrtValue.ortvalue_from_numpy(np.array([[1, -2], [3, 4]], dtype=np.int64))}


def _write(engine, path, params):
    adapter = engine.AdapterFormat()
    adapter.set_adapter_version(3)
    adapter.set_model_version(5)
    adapter.set_parameters(params)
    adapter.export_adapter(str(path))


@pytest.mark.parametrize("writer", ["graft", "onnxruntime"])
def test_adapter_files_round_trip(tmp_path, writer):
    engine = graft if writer == "graft" else ort
    params = _params(engine)
    _write(engine, tmp_path / "x.onnx_adapter", params)
    read = graft.AdapterFormat.read_adapter(str(tmp_path / "x.onnx_adapter"))
    assert (read.get_adapter_version(), read.get_model_version()) == (3, 5)
    got = read.get_parameters()
    assert sorted(got) == ["a", "b"]
    for name, value in params.items():
        assert got[name].element_type() == value.element_type()
        np.testing.assert_array_equal(got[name].numpy(), value.numpy())


def test_active_adapter_feeds_the_model(tmp_path):
    m = model([helper.make_node("MatMul", ["x", "lora"], ["y"])],
              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
               helper.make_tensor_value_info("lora", TensorProto.FLOAT, [3, 2])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])])
    lora = np.arange(6, dtype=np.float32).reshape(3, 2)
    _write(ort, tmp_path / "l.onnx_adapter", {"lora": ort.OrtValue.ortvalue_from_numpy(lora)})
    adapter = graft.LoraAdapter()
    adapter.Load(str(tmp_path / "l.onnx_adapter"))
    ro = graft.RunOptions()
    ro.add_active_adapter(adapter)
    x = np.ones((2, 3), np.float32)
    (y,) = graft.InferenceSession(m.SerializeToString()).run(None, {"x": x}, ro)
    np.testing.assert_array_equal(y, x @ lora)


def test_damaged_adapter_files_are_refused(tmp_path):
    _write(ort, tmp_path / "ok.onnx_adapter", _params(ort))
    data = (tmp_path / "ok.onnx_adapter").read_bytes()
    (tmp_path / "cut.onnx_adapter").write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="damaged|holds"):
        graft.AdapterFormat.read_adapter(str(tmp_path / "cut.onnx_adapter"))
    (tmp_path / "junk.onnx_adapter").write_bytes(b"\x00" * 16)
    with pytest.raises(RuntimeError, match="not a graft adapter file"):
        graft.AdapterFormat.read_adapter(str(tmp_path / "junk.onnx_adapter"))
