"""onnxruntime's on-device training interface (onnxruntime.training.api: CheckpointState, Module,
Optimizer, LinearLRScheduler) over the artifacts of graft.training.generate_artifacts.

graft's torch-style schedules (ConstantLR, LinearLR, StepLR, CosineAnnealingLR from
graft.lr_scheduler) also drive an Optimizer here, through its `learning_rate` property."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import onnx

from .. import distributed as dist
from .._C import get_rng_state, set_rng_state
from ..checkpoint import load_checkpoint, save_checkpoint
from ..lr_scheduler import ConstantLR, CosineAnnealingLR, LinearLR, LRScheduler, StepLR
from ..session import InferenceSession
from .artifacts import STATISTIC_SUFFIX

__all__ = ["CheckpointState", "ConstantLR", "CosineAnnealingLR", "LRScheduler", "LinearLR", "LinearLRScheduler",
           "Module", "Optimizer", "StepLR"]


_RNG = "graft.rng"


class CheckpointState:
    """Parameters and optimizer state by name, plus the step and user properties. A saved
    checkpoint also holds graft's default random generator (what unseeded Dropout draws from),
    which loading restores, so a resumed run draws the masks an uninterrupted one would."""

    def __init__(self, tensors: dict[str, np.ndarray], step: int = 0, properties: dict | None = None) -> None:
        self.tensors = dict(tensors)
        self.step = step
        self.properties = dict(properties or {})

    @classmethod
    def load_checkpoint(cls, path: str | os.PathLike) -> "CheckpointState":
        tensors, step, properties = load_checkpoint(path)
        if _RNG in properties:
            set_rng_state(properties.pop(_RNG))
        return cls(tensors, step, properties)

    @classmethod
    def save_checkpoint(cls, state: "CheckpointState", path: str | os.PathLike) -> None:
        """Writes the checkpoint atomically. Launched with several ranks (where the state is the
        same on all of them after data-parallel steps), rank 0 writes and every rank returns once
        the file is complete, so all ranks call it."""
        if dist.size() > 1:
            failed, error = np.zeros(1, np.int32), None
            if dist.rank() == 0:
                try:
                    save_checkpoint(path, state.tensors, state.step, {**state.properties, _RNG: get_rng_state()})
                except Exception as e:  # every rank learns of it, rather than wait forever
                    failed[0], error = 1, e
            if dist.broadcast(failed, root=0)[0]:
                raise error or RuntimeError(f"rank 0 could not write the checkpoint '{os.fspath(path)}'")
            return
        save_checkpoint(path, state.tensors, state.step, {**state.properties, _RNG: get_rng_state()})


class Module:
    """Runs the training model (gradients accumulate until the optimizer steps) or, in eval mode,
    the eval model, with the parameters held by `state`.

    Launched with `mpirun -np N` (N > 1) the module trains data-parallel unless
    data_parallel=False: it takes rank 0's parameters, and the training model's gradients are
    averaged across ranks by com.graft.AllReduce nodes (buckets of about bucket_mb MiB) inside
    the model, so each rank feeds its own share of the batch and every rank's optimizer applies
    the same update.

    BatchNormalization running statistics (inputs of the training model whose new values it
    outputs as "<statistic>.new") live in `state` beside the parameters: each training call
    replaces them with the new values (averaged across ranks when data parallel), and the eval
    model normalizes with them."""

    def __init__(self, training_model: str | os.PathLike, state: CheckpointState,
                 eval_model: str | os.PathLike | None = None, *, data_parallel: bool | None = None,
                 bucket_mb: float = 25.0) -> None:
        self._state = state
        self.data_parallel = dist.size() > 1 if data_parallel is None else bool(data_parallel)
        if self.data_parallel:
            model = onnx.load(os.fspath(training_model))
            params = [o.name[: -len("_grad")] for o in model.graph.output if o.name.endswith("_grad")]
            self._train = InferenceSession(
                dist._D.add_gradient_all_reduce(model.SerializeToString(), params, bucket_mb))
            for p in params:
                state.tensors[p] = dist.broadcast(np.ascontiguousarray(state.tensors[p]), root=0)
        else:
            self._train = InferenceSession(training_model)
        self._eval = InferenceSession(eval_model) if eval_model else None
        self._eval_inputs = ({i.name for i in self._eval.get_inputs() + self._eval.get_overridable_initializers()}
                             if self._eval else set())
        self._eval_path = eval_model
        self._outputs = [o.name for o in self._train.get_outputs()]
        self._params = [n[: -len("_grad")] for n in self._outputs if n.endswith("_grad")]
        names = {i.name for i in self._train.get_inputs() + self._train.get_overridable_initializers()}
        self._stats = [n[: -len(STATISTIC_SUFFIX)] for n in self._outputs
                       if n.endswith(STATISTIC_SUFFIX) and n[: -len(STATISTIC_SUFFIX)] in names]
        for stat in self._stats:
            if stat not in state.tensors:
                raise ValueError(f"the checkpoint state has no '{stat}', a running statistic of "
                                 f"training model '{os.fspath(training_model)}'")
        self._inputs = [i.name for i in self._train.get_inputs() if i.name not in self._params + self._stats]
        self.grads: dict[str, np.ndarray] = {}
        self._reset = True
        self.training = True

    def train(self, mode: bool = True) -> "Module":
        self.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def lazy_reset_grad(self) -> None:
        self._reset = True

    def __call__(self, *inputs: Any) -> Any:
        feeds = dict(zip(self._inputs, inputs))
        feeds.update({p: self._state.tensors[p] for p in self._params + self._stats})
        if not self.training:
            feeds = {k: v for k, v in feeds.items() if k in self._eval_inputs}
            return self._eval.run(None, feeds)[-1]  # the loss is the eval model's last output
        outs = dict(zip(self._outputs, self._train.run(None, feeds)))
        for p in self._params:
            g = outs[f"{p}_grad"]
            self.grads[p] = g.copy() if self._reset or p not in self.grads else self.grads[p] + g
        for stat in self._stats:
            new = outs[stat + STATISTIC_SUFFIX]
            self._state.tensors[stat] = dist.all_reduce(new, op="average") if self.data_parallel else new
        self._reset = False
        return outs["loss"]

    def export_model_for_inferencing(self, path: str | os.PathLike, graph_output_names: Sequence[str]) -> None:
        """The eval model with the current parameters, pruned to `graph_output_names`."""
        model = onnx.load(self._eval_path)
        inits = {i.name: i for i in model.graph.initializer}
        for p in self._params + self._stats:
            inits[p].CopyFrom(onnx.numpy_helper.from_array(self._state.tensors[p], p))
        model.graph.ClearField("output")
        value_infos = {v.name: v for v in list(model.graph.value_info)}
        needed = set(graph_output_names)
        kept = []
        for node in reversed(model.graph.node):
            if any(o in needed for o in node.output):
                kept.append(node)
                needed.update(node.input)
        del model.graph.node[:]
        model.graph.node.extend(reversed(kept))
        inferred = onnx.shape_inference.infer_shapes(model)
        types = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
        types.update(value_infos)
        for name in graph_output_names:
            model.graph.output.append(types.get(name) or onnx.helper.make_empty_tensor_value_info(name))
        keep_inputs = [i for i in model.graph.input if i.name in needed and i.name not in self._params + self._stats]
        del model.graph.input[:]
        model.graph.input.extend(keep_inputs)
        keep_inits = [i for i in model.graph.initializer if i.name in needed]
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep_inits)
        onnx.save(model, path)


class Optimizer:
    """Applies the module's accumulated gradients with the optimizer model."""

    def __init__(self, optimizer_model: str | os.PathLike, module: Module) -> None:
        self._module = module
        self._sess = InferenceSession(optimizer_model)
        self._outputs = [o.name for o in self._sess.get_outputs()]
        self.lr = 1e-3

    def set_learning_rate(self, lr: float) -> None:
        self.lr = float(lr)

    def get_learning_rate(self) -> float:
        return self.lr

    @property
    def learning_rate(self) -> float:
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.lr = float(value)

    def step(self) -> None:
        m = self._module
        state = m._state
        feeds = {"graft.lr": np.array(self.lr, np.float32), "graft.step": np.array(state.step, np.int64)}
        # Parameters and optimizer state have initializers (their first-step values): they are
        # overridable initializers, not plain inputs.
        for inp in self._sess.get_inputs() + self._sess.get_overridable_initializers():
            if inp.name.startswith("gradient/"):
                feeds[inp.name] = m.grads[inp.name[len("gradient/"):]]
            elif inp.name in state.tensors:
                feeds[inp.name] = state.tensors[inp.name]
        outs = dict(zip(self._outputs, self._sess.run(None, feeds)))
        for name, value in outs.items():
            if name == "graft.step.new":
                state.step = int(value)
            elif name.endswith(".new"):
                state.tensors[name[: -len(".new")]] = value


class LinearLRScheduler:
    """onnxruntime's linear schedule: the learning rate rises linearly from 0 to `initial_lr` over
    `warmup_step_count` optimizer steps, then falls linearly to 0 at `total_step_count`. The
    optimizer starts at `initial_lr`; call `step()` after each `Optimizer.step()`."""

    def __init__(self, optimizer: Optimizer, warmup_step_count: int, total_step_count: int,
                 initial_lr: float) -> None:
        if warmup_step_count < 0 or total_step_count < warmup_step_count:
            raise ValueError(f"LinearLRScheduler: need 0 <= warmup_step_count ({warmup_step_count}) <= "
                             f"total_step_count ({total_step_count})")
        self._optimizer = optimizer
        self.warmup_step_count, self.total_step_count = warmup_step_count, total_step_count
        self.initial_lr = float(initial_lr)
        optimizer.set_learning_rate(self.initial_lr)

    def factor(self, step: int) -> float:
        """The multiplier of initial_lr after `step` optimizer steps."""
        if step < self.warmup_step_count:
            return step / max(1, self.warmup_step_count)
        return max(0.0, (self.total_step_count - step) / max(1, self.total_step_count - self.warmup_step_count))

    def step(self) -> None:
        self._optimizer.set_learning_rate(self.initial_lr * self.factor(self._optimizer._module._state.step))
