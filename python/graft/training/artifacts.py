"""Training artifacts with onnxruntime's on-device training names (onnxruntime.training.artifacts):
`generate_artifacts` writes the training, eval and optimizer models (plain ONNX) and a checkpoint;
graft.training.api runs them.
"""

from __future__ import annotations

import enum
import os
import pathlib
import warnings
from typing import Any, Sequence

import onnx
from onnx import TensorProto

from .. import _C
from . import onnxblock

# The suffix of the graph output that carries a running statistic's new value in the training
# model (as TrainingSession names it).
STATISTIC_SUFFIX = _C.names.NEW_SUFFIX


class LossType(enum.Enum):
    MSELoss = "mse"
    CrossEntropyLoss = "cross_entropy"
    BCEWithLogitsLoss = "bce_with_logits"
    L1Loss = "l1"


class OptimType(enum.Enum):
    SGD = "sgd"
    Adam = "adam"
    AdamW = "adamw"


_LOSS_BLOCKS = {LossType.MSELoss: onnxblock.loss.MSELoss, LossType.CrossEntropyLoss: onnxblock.loss.CrossEntropyLoss,
                LossType.BCEWithLogitsLoss: onnxblock.loss.BCEWithLogitsLoss, LossType.L1Loss: onnxblock.loss.L1Loss}


class _LossOnTop(onnxblock.TrainingBlock):
    """The loss block on the model's outputs (or `loss_input_names`), the loss named "loss"
    where that name is free, then `additional_output_names`."""

    def __init__(self, loss: onnxblock.Block, loss_input_names: Sequence[str] | None,
                 additional_output_names: Sequence[str] | None) -> None:
        super().__init__()
        self._loss = loss
        self._loss_input_names = list(loss_input_names or [])
        self._additional = list(additional_output_names or [])

    def build(self, *model_outputs: str) -> tuple[str, ...]:
        outputs = self._loss(*(self._loss_input_names or model_outputs))
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        if outputs[0] not in model_outputs and not onnxblock._graph.value_exists(self.base, "loss"):
            self.base.graph.node.append(onnx.helper.make_node("Identity", [outputs[0]], ["loss"], name="loss"))
            outputs[0] = "loss"
        return (*outputs, *[n for n in self._additional if n not in outputs])


def _default_requires_grad(model: onnx.ModelProto, frozen: set[str]) -> list[str]:
    """graft's default: every floating-point initializer but the frozen ones and
    BatchNormalization running statistics (buffers, not parameters)."""
    statistics = {name for node in model.graph.node if node.op_type == "BatchNormalization" and not node.domain
                  for name in node.input[3:5]}
    return [t.name for t in model.graph.initializer
            if t.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16)
            and t.name not in frozen and t.name not in statistics]


def generate_artifacts(model: onnx.ModelProto | str | os.PathLike, requires_grad: Sequence[str] | None = None,
                       frozen_params: Sequence[str] | None = None,
                       loss: LossType | onnxblock.Block | None = None,
                       optimizer: OptimType | onnxblock.Block | None = None,
                       artifact_directory: str | os.PathLike | None = None, prefix: str = "",
                       ort_format: bool = False, custom_op_library: str | os.PathLike | None = None,
                       additional_output_names: Sequence[str] | None = None, nominal_checkpoint: bool = False,
                       loss_input_names: Sequence[str] | None = None, **optimizer_options: Any) -> None:
    """Writes `<prefix>training_model.onnx`, `<prefix>eval_model.onnx`, `<prefix>checkpoint` and,
    with an optimizer, `<prefix>optimizer_model.onnx` to `artifact_directory` (default: the
    current directory), as onnxruntime.training.artifacts does; graft.training.api runs them.

    model: a ModelProto or the path of an ONNX file (external data next to it is read).
    requires_grad: the parameters (initializers) to train. Unlike onnxruntime, where None trains
    nothing, None trains every floating-point initializer not in frozen_params, but
    BatchNormalization running statistics. frozen_params: initializers held in the checkpoint
    and fed from it, but not trained (onnxruntime's non-trainable parameters). A parameter may
    not be in both.
    loss: a LossType or an onnxblock.Block called on the model's outputs (or on
    loss_input_names); its (first) output is the loss, named "loss" where that name is free.
    None: the model's first output already is the loss.
    optimizer: an OptimType or an onnxblock.optim block (SGD, AdamW); None writes no optimizer
    model. OptimType.AdamW is onnxblock.optim.AdamW() (eps 1e-6, no weight decay) and
    OptimType.SGD plain SGD, as in onnxruntime; `optimizer_options` (graft's: momentum,
    nesterov, weight_decay, betas, eps, max_grad_norm, ... as graft.optim.add_optimizer) replace
    those defaults, and OptimType.Adam is graft's.

    The training model outputs the loss, then additional_output_names, then "<p>_grad" per
    trained parameter (graft's gradient graph, graft.autodiff: standard ONNX ops and com.graft
    functions) and "<statistic>.new" per running statistic of BatchNormalization in training
    mode; the Module accumulates gradients itself. The eval model outputs the loss and
    additional_output_names, with Dropout's training_mode input removed ("") and
    BatchNormalization in inference mode, and records the base model's outputs in its metadata
    ("graft.inference_outputs"): what Module.export_model_for_inferencing exports when given no
    names. Both read parameters, frozen parameters and running
    statistics as graph inputs, fed from the checkpoint. The checkpoint holds all three;
    nominal_checkpoint=True also writes `<prefix>nominal_checkpoint`, the names, types and
    shapes alone.

    Opsets: the eval model keeps the base model's default-domain opset. The training and
    optimizer models use at least opset 18: graft's gradient rules and optimizer updates are
    written against opset 18 (CastLike from 15, reductions with axes as inputs from 18), so a
    base model below 18 gets 18 there.

    ort_format=True: graft has no .ort format (onnxruntime's flatbuffer serialization for its
    minimal builds); the .onnx files are written, no .ort files, with a warning. graft runs the
    .onnx files as they are.
    custom_op_library: onnxruntime's compiled custom-op library, which its gradient builder
    loads. graft builds gradients from the ONNX graph: the path is checked to exist, and a
    custom op needs a graft gradient rule (graft.autodiff) only if a trained parameter's
    gradient flows through it."""
    if isinstance(model, (str, os.PathLike)):
        model_path = os.fspath(model)
        model = onnx.load(model_path)
    elif isinstance(model, onnx.ModelProto):
        model_path = None
    else:
        raise TypeError(f"model must be an onnx.ModelProto or the path of an ONNX file, got {type(model).__name__}")
    if ort_format:
        warnings.warn("generate_artifacts(ort_format=True): graft has no .ort format; writing the .onnx files only",
                      stacklevel=2)
    frozen = list(frozen_params or [])
    if requires_grad is None:
        requires_grad = _default_requires_grad(model, set(frozen))
    both = set(requires_grad) & set(frozen)
    if both:
        raise ValueError(f"parameters {sorted(both)} are both in requires_grad and in frozen_params")

    if loss is None:
        loss_block: onnxblock.Block = onnxblock.blocks.PassThrough()
    elif isinstance(loss, LossType):
        loss_block = _LOSS_BLOCKS[loss]()
    elif isinstance(loss, onnxblock.Block):
        loss_block = loss
    else:
        raise TypeError(f"loss must be a LossType or an onnxblock.Block, got {type(loss).__name__}")
    training_block = _LossOnTop(loss_block, loss_input_names, additional_output_names)
    for name in requires_grad:
        training_block.requires_grad(name)
    for name in frozen:
        training_block.requires_grad(name, False)
    library = onnxblock.custom_op_library(custom_op_library) if custom_op_library is not None else None
    with onnxblock.base(model, model_path):
        if library is not None:
            with library:
                training_block(*[o.name for o in model.graph.output])
        else:
            training_block(*[o.name for o in model.graph.output])
    training_model, eval_model = training_block.to_model_proto()
    parameters = training_block.parameters()
    # What Module.export_model_for_inferencing exports when given no names: the base model's outputs.
    entry = eval_model.metadata_props.add()
    entry.key, entry.value = _C.INFERENCE_OUTPUTS_METADATA, "\n".join(o.name for o in model.graph.output)

    directory = pathlib.Path(artifact_directory if artifact_directory is not None else pathlib.Path.cwd())
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(training_model, directory / f"{prefix}training_model.onnx")
    onnx.save(eval_model, directory / f"{prefix}eval_model.onnx")
    onnxblock.save_checkpoint(parameters, directory / f"{prefix}checkpoint")
    if nominal_checkpoint:
        onnxblock.save_checkpoint(parameters, directory / f"{prefix}nominal_checkpoint", nominal_checkpoint=True)
    if optimizer is None:
        return
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if isinstance(optimizer, OptimType):
        if optimizer_options or optimizer == OptimType.Adam:
            optimizer_block: onnxblock.Block = _GraftOptimizer(optimizer.value, optimizer_options)
        else:
            optimizer_block = onnxblock.optim.AdamW() if optimizer == OptimType.AdamW else onnxblock.optim.SGD()
    elif isinstance(optimizer, onnxblock.optim._Optimizer):
        if optimizer_options:
            raise TypeError(f"optimizer options {sorted(optimizer_options)} apply to an OptimType, not to an "
                            "optimizer block (give them to the block)")
        optimizer_block = optimizer
    else:
        raise TypeError(f"optimizer must be an OptimType or an onnxblock.optim block, got {type(optimizer).__name__}")
    with onnxblock.empty_base(opset_version=opset):
        optimizer_block(parameters)
        optimizer_model = optimizer_block.to_model_proto()
    onnx.save(optimizer_model, directory / f"{prefix}optimizer_model.onnx")


class _GraftOptimizer(onnxblock.optim._Optimizer):
    """graft.optim.add_optimizer's `kind` with its options."""

    def __init__(self, kind: str, options: dict[str, Any]) -> None:
        options = dict(options)
        max_norm = options.pop("max_grad_norm", 0.0)
        super().__init__(onnxblock.optim.ClipGradNorm(max_norm) if max_norm else None)
        self._kind = kind
        self._extra = options

    def _options(self) -> dict[str, Any]:
        return self._extra
