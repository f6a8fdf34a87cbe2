"""Saving a loaded model gives a model onnx.checker accepts and that computes the same outputs."""

import numpy as np
import onnx

import graft
import graft._C
from torch_models import ResNet18, export, randomize_batchnorm

import torch


def test_resave_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ResNet18(num_classes=10)
    randomize_batchnorm(model, seed=2)
    x = torch.randn(1, 3, 64, 64)
    src = str(tmp_path / "src.onnx")
    export(model, (x,), src)
    dst = str(tmp_path / "saved.onnx")
    graft._C.resave_model(src, dst)
    onnx.checker.check_model(dst, full_check=True)
    a = graft.InferenceSession(src).run(None, {"input": x.numpy()})[0]
    b = graft.InferenceSession(dst).run(None, {"input": x.numpy()})[0]
    np.testing.assert_array_equal(a, b)
    # The graph survives unchanged: same nodes, initializers and opsets.
    before, after = onnx.load(src), onnx.load(dst)
    assert [n.op_type for n in before.graph.node] == [n.op_type for n in after.graph.node]
    assert {i.name for i in before.graph.initializer} == {i.name for i in after.graph.initializer}
    assert {(o.domain, o.version) for o in before.opset_import} == {(o.domain, o.version) for o in after.opset_import}


def test_save_does_not_clobber_on_failure(tmp_path):
    bad_dir = tmp_path / "no_such_dir" / "out.onnx"
    src = tmp_path / "m.onnx"
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])])
    onnx.save(onnx.helper.make_model(graph), src)
    try:
        graft._C.resave_model(str(src), str(bad_dir))
        raise AssertionError("saving into a missing folder should fail")
    except graft.InvalidArgument as e:
        assert "cannot write model file" in str(e)
    assert src.exists()
