"""onnxruntime.training.onnxblock for graft: build training, eval and optimizer models by
stacking blocks on an ONNX model. Gradients are graft's (graft.autodiff) and optimizer updates
graft's (graft.optim), so the models are those graft.training.api runs.

    class MyModel(onnxblock.TrainingBlock):
        def __init__(self):
            super().__init__()
            self.loss = onnxblock.loss.CrossEntropyLoss()
        def build(self, output_name):
            return self.loss(output_name)

    model = MyModel()
    model.requires_grad("fc.weight")
    with onnxblock.base(forward_model):
        model(forward_model.graph.output[0].name)
    training_model, eval_model = model.to_model_proto()
"""

from . import blocks, loss, optim
from .blocks import Block
from .checkpoint_utils import load_checkpoint_to_model, save_checkpoint
from .model_accessor import base, custom_op_library, empty_base
from .onnxblock import ForwardBlock, TrainingBlock

__all__ = ["blocks", "loss", "optim", "Block", "ForwardBlock", "TrainingBlock", "load_checkpoint_to_model",
           "save_checkpoint", "base", "custom_op_library", "empty_base"]
