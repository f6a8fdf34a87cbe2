"""graft.training.artifacts.generate_artifacts with onnxruntime's arguments: which files, inputs,
outputs and opsets it writes, and the eval model's inference mode."""

import os
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import graft
from graft.checkpoint import load_checkpoint
from graft.training import artifacts, onnxblock

from .training_models import onnx_mlp, torch_mlp

PARAMS = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def _load(directory, name):
    return onnx.load(os.path.join(directory, name))


def test_files_inputs_and_outputs(tmp_path):
    artifacts.generate_artifacts(onnx_mlp(torch_mlp()), requires_grad=PARAMS[2:], frozen_params=PARAMS[:2],
                                 loss=artifacts.LossType.CrossEntropyLoss, optimizer=artifacts.OptimType.SGD,
                                 artifact_directory=tmp_path, prefix="p_")
    assert sorted(os.listdir(tmp_path)) == ["p_checkpoint", "p_eval_model.onnx", "p_optimizer_model.onnx",
                                            "p_training_model.onnx"]
    training, eval_model = _load(tmp_path, "p_training_model.onnx"), _load(tmp_path, "p_eval_model.onnx")
    assert [i.name for i in training.graph.input] == ["input", "labels", *PARAMS]
    assert [o.name for o in training.graph.output] == ["loss", "fc2.weight_grad", "fc2.bias_grad"]
    assert [o.name for o in eval_model.graph.output] == ["loss"]
    assert not training.graph.initializer and not eval_model.graph.initializer
    tensors, _, properties = load_checkpoint(tmp_path / "p_checkpoint")
    assert sorted(tensors) == sorted(PARAMS)  # frozen parameters too
    assert properties["graft.frozen"].split("\n") == PARAMS[:2]
    for m in (training, eval_model, _load(tmp_path, "p_optimizer_model.onnx")):
        onnx.checker.check_model(m)


def test_opsets_eval_keeps_the_base_training_needs_18(tmp_path):
    artifacts.generate_artifacts(onnx_mlp(torch_mlp(), opset=14), requires_grad=PARAMS,
                                 loss=artifacts.LossType.MSELoss, optimizer=artifacts.OptimType.AdamW,
                                 artifact_directory=tmp_path)
    opset = {f: {o.domain: o.version for o in _load(tmp_path, f).opset_import}[""]
             for f in ("training_model.onnx", "eval_model.onnx", "optimizer_model.onnx")}
    assert opset == {"training_model.onnx": 18, "eval_model.onnx": 14, "optimizer_model.onnx": 18}
    artifacts.generate_artifacts(onnx_mlp(torch_mlp(), opset=19), requires_grad=PARAMS,
                                 loss=artifacts.LossType.MSELoss, optimizer=artifacts.OptimType.AdamW,
                                 artifact_directory=tmp_path)
    for f in ("training_model.onnx", "eval_model.onnx", "optimizer_model.onnx"):
        assert {o.domain: o.version for o in _load(tmp_path, f).opset_import}[""] == 19, f


def _dropout_model():
    # As torch.onnx.export writes it in training mode: ratio and training_mode from Constant nodes.
    nodes = [helper.make_node("Constant", [], ["ratio"], value=numpy_helper.from_array(np.array(0.5, np.float32))),
             helper.make_node("Constant", [], ["training_mode"], value=numpy_helper.from_array(np.array(True))),
             helper.make_node("Dropout", ["x", "ratio", "training_mode"], ["y"])]
    graph = helper.make_graph(nodes, "d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)


def test_eval_model_without_dropout_training_mode_and_additional_outputs(tmp_path):
    artifacts.generate_artifacts(_dropout_model(), loss=artifacts.LossType.CrossEntropyLoss,
                                 artifact_directory=tmp_path)
    eval_model = _load(tmp_path, "eval_model.onnx")
    assert [o.name for o in eval_model.graph.output] == ["loss"]
    dropout = [n for n in eval_model.graph.node if n.op_type == "Dropout"]
    assert len(dropout) == 1 and len(dropout[0].input) == 3 and dropout[0].input[2] == ""
    assert not os.path.exists(tmp_path / "optimizer_model.onnx")
    # Inference mode: Dropout is the identity.
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    labels = np.array([[0, 1, 2, 0], [2, 2, 1, 0]], np.int64)
    got = graft.InferenceSession(eval_model.SerializeToString()).run(None, {"x": x, "labels": labels})[0]
    want = torch.nn.functional.cross_entropy(torch.from_numpy(x), torch.from_numpy(labels))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5)
    artifacts.generate_artifacts(_dropout_model(), loss=artifacts.LossType.CrossEntropyLoss,
                                 artifact_directory=tmp_path, additional_output_names=["y"])
    assert [o.name for o in _load(tmp_path, "eval_model.onnx").graph.output] == ["loss", "y"]
    assert [o.name for o in _load(tmp_path, "training_model.onnx").graph.output] == ["loss", "y"]


def test_loss_none_and_custom_loss_block(tmp_path):
    model = onnx_mlp(torch_mlp())
    model.graph.node.append(helper.make_node("ReduceSumSquare", ["output"], ["sq"], keepdims=0))
    model.graph.output.insert(0, helper.make_tensor_value_info("sq", TensorProto.FLOAT, []))
    artifacts.generate_artifacts(model, requires_grad=["fc2.bias"], artifact_directory=tmp_path)
    assert [o.name for o in _load(tmp_path, "training_model.onnx").graph.output] == ["sq", "output", "fc2.bias_grad"]

    class TwoLosses(onnxblock.Block):
        def __init__(self):
            self.mse, self.l1, self.add = onnxblock.loss.MSELoss(), onnxblock.loss.L1Loss(), onnxblock.blocks.Add()

        def build(self, output):
            return self.add(self.mse(output, target_name="t1"), self.l1(output, target_name="t2"))

    artifacts.generate_artifacts(onnx_mlp(torch_mlp()), requires_grad=["fc2.bias"], loss=TwoLosses(),
                                 artifact_directory=tmp_path, loss_input_names=["output"])
    training = _load(tmp_path, "training_model.onnx")
    assert [i.name for i in training.graph.input][:3] == ["input", "t1", "t2"]
    assert [o.name for o in training.graph.output] == ["loss", "fc2.bias_grad"]


def test_model_path_nominal_checkpoint_and_ort_format(tmp_path):
    onnx.save(onnx_mlp(torch_mlp()), tmp_path / "mlp.onnx")
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="no .ort format"):
        artifacts.generate_artifacts(str(tmp_path / "mlp.onnx"), requires_grad=PARAMS,
                                     loss=artifacts.LossType.L1Loss, optimizer=artifacts.OptimType.AdamW,
                                     artifact_directory=out, ort_format=True, nominal_checkpoint=True)
    assert not [f for f in os.listdir(out) if f.endswith(".ort")]
    assert (out / "nominal_checkpoint").stat().st_size < (out / "checkpoint").stat().st_size
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        artifacts.generate_artifacts(str(tmp_path / "mlp.onnx"), requires_grad=PARAMS, artifact_directory=out)


def test_bad_arguments_are_named(tmp_path):
    model = onnx_mlp(torch_mlp())
    with pytest.raises(ValueError, match="fc1.weight"):
        artifacts.generate_artifacts(model, requires_grad=["fc1.weight"], frozen_params=["fc1.weight"],
                                     artifact_directory=tmp_path)
    with pytest.raises(RuntimeError, match="nope.so"):
        artifacts.generate_artifacts(model, requires_grad=PARAMS, custom_op_library=tmp_path / "nope.so",
                                     artifact_directory=tmp_path)
    with pytest.raises(TypeError, match="loss"):
        artifacts.generate_artifacts(model, loss="mse", artifact_directory=tmp_path)


def test_custom_optimizer_block_and_enum_defaults(tmp_path):
    artifacts.generate_artifacts(onnx_mlp(torch_mlp()), requires_grad=PARAMS, loss=artifacts.LossType.MSELoss,
                                 optimizer=onnxblock.optim.AdamW(weight_decay=123.0, eps=1e-5),
                                 artifact_directory=tmp_path)
    attrs = {a.name: helper.get_attribute_value(a) for n in _load(tmp_path, "optimizer_model.onnx").graph.node
             if n.op_type == "AdamUpdate" for a in n.attribute}
    assert attrs["weight_decay"] == pytest.approx(123.0) and attrs["epsilon"] == pytest.approx(1e-5)
    artifacts.generate_artifacts(onnx_mlp(torch_mlp()), requires_grad=PARAMS, loss=artifacts.LossType.MSELoss,
                                 optimizer=artifacts.OptimType.AdamW, artifact_directory=tmp_path)
    attrs = {a.name: helper.get_attribute_value(a) for n in _load(tmp_path, "optimizer_model.onnx").graph.node
             if n.op_type == "AdamUpdate" for a in n.attribute}
    assert attrs["weight_decay"] == 0.0 and attrs["epsilon"] == pytest.approx(1e-6)  # onnxruntime's AdamW()
