"""onnxruntime's on-device training interface (onnxruntime.training.api: CheckpointState, Module,
Optimizer, LinearLRScheduler) over the artifacts of graft.training.generate_artifacts.

The objects are graft's C++ training API (train/training_api.h) bound to Python; this module
only converts between NumPy and graft's values. graft's torch-style schedules (ConstantLR,
LinearLR, StepLR, CosineAnnealingLR from graft.lr_scheduler) also drive an Optimizer here,
through its `learning_rate` property."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .. import _C
from ..lr_scheduler import ConstantLR, CosineAnnealingLR, LinearLR, LRScheduler, StepLR
from ..session import _from_native, _to_native

__all__ = ["CheckpointState", "ConstantLR", "CosineAnnealingLR", "LRScheduler", "LinearLR", "LinearLRScheduler",
           "Module", "Optimizer", "StepLR"]


def _arrays(native: dict) -> dict[str, np.ndarray]:
    """Copies: writing into a returned array never changes the state behind it."""
    return {name: np.array(_from_native(value)) for name, value in native.items()}


class CheckpointState:
    """Parameters and optimizer state by name, plus the step and user properties. A saved
    checkpoint also holds graft's default random generator (what unseeded Dropout draws from),
    which loading restores, so a resumed run draws the masks an uninterrupted one would."""

    def __init__(self, tensors: dict[str, np.ndarray], step: int = 0, properties: dict | None = None) -> None:
        self._state = _C.CheckpointState({k: _to_native(v, None) for k, v in tensors.items()}, int(step),
                                         dict(properties or {}))

    @classmethod
    def _wrap(cls, native: "_C.CheckpointState") -> "CheckpointState":
        state = cls.__new__(cls)
        state._state = native
        return state

    @classmethod
    def load_checkpoint(cls, path: str | os.PathLike) -> "CheckpointState":
        return cls._wrap(_C.CheckpointState.load(os.fspath(path)))

    @classmethod
    def save_checkpoint(cls, state: "CheckpointState", path: str | os.PathLike,
                        include_optimizer_state: bool = False) -> None:
        """Writes the checkpoint atomically: the parameters and properties, and with
        include_optimizer_state also the optimizer state, step and learning rate (what resuming
        needs), as onnxruntime does. Launched with several ranks, rank 0 writes and every rank
        returns once the file is complete, or raises rank 0's error, so all ranks call it."""
        state._state.save(os.fspath(path), include_optimizer_state)

    @property
    def tensors(self) -> dict[str, np.ndarray]:
        """Parameters and optimizer state by name (a snapshot: assign to change them)."""
        return {**_arrays(self._state.parameters()), **_arrays(self._state.optimizer_state())}

    @tensors.setter
    def tensors(self, values: dict[str, np.ndarray]) -> None:
        for name, value in values.items():
            self._state.set_tensor(name, _to_native(np.ascontiguousarray(value), None))

    @property
    def parameters(self) -> dict[str, np.ndarray]:
        return _arrays(self._state.parameters())

    @property
    def optimizer_state(self) -> dict[str, np.ndarray]:
        return _arrays(self._state.optimizer_state())

    @property
    def step(self) -> int:
        return self._state.step

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._state.properties())

    def add_property(self, name: str, value: Any) -> None:
        self._state.add_property(name, str(value))


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
        self._module = _C.Module(state._state, os.fspath(training_model), os.fspath(eval_model or ""),
                                 data_parallel, bucket_mb)
        self._train_inputs = self._module.input_names(True)
        self._eval_inputs = self._module.input_names(False)
        self.training = True

    def train(self, mode: bool = True) -> "Module":
        self.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def lazy_reset_grad(self) -> None:
        self._module.lazy_reset_grad()

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The accumulated gradients by parameter name."""
        return _arrays(self._module.gradients())

    @property
    def data_parallel(self) -> bool:
        return self._module.data_parallel

    def parameters(self) -> list[str]:
        return list(self._module.parameter_names())

    def __call__(self, *inputs: Any) -> Any:
        """Feeds `inputs` in the model's input order; returns the loss (training) or the eval
        model's last output, its loss (eval)."""
        names = self._train_inputs if self.training else self._eval_inputs
        feeds = {n: _to_native(v, None) for n, v in zip(names, inputs)}
        if self.training:
            outs = self._module.train_step(feeds)
            names = self._module.output_names(True)
            return _from_native(outs[names.index("loss")] if "loss" in names else outs[-1])
        return _from_native(self._module.eval_step(feeds)[-1])

    def export_model_for_inferencing(self, path: str | os.PathLike, graph_output_names: Sequence[str]) -> None:
        """The eval model with the current parameters, pruned to `graph_output_names`."""
        self._module.export_model_for_inferencing(os.fspath(path), list(graph_output_names))


class Optimizer:
    """Applies the module's accumulated gradients with the optimizer model. The learning rate is
    the checkpoint's when it holds one (saved with its optimizer state), else 1e-3."""

    def __init__(self, optimizer_model: str | os.PathLike, module: Module) -> None:
        self._module = module
        self._optimizer = _C.Optimizer(module._module, os.fspath(optimizer_model))

    def set_learning_rate(self, lr: float) -> None:
        self._optimizer.set_learning_rate(float(lr))

    def get_learning_rate(self) -> float:
        return self._optimizer.learning_rate

    @property
    def learning_rate(self) -> float:
        return self._optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._optimizer.set_learning_rate(float(value))

    def step(self) -> None:
        self._optimizer.step()


class LinearLRScheduler:
    """onnxruntime's linear schedule: the learning rate rises linearly from 0 to `initial_lr` over
    `warmup_step_count` optimizer steps, then falls linearly to 0 at `total_step_count`. The
    optimizer starts at `initial_lr`; call `step()` after each `Optimizer.step()`."""

    def __init__(self, optimizer: Optimizer, warmup_step_count: int, total_step_count: int,
                 initial_lr: float) -> None:
        self._optimizer = optimizer
        self._scheduler = _C.LinearLRScheduler(optimizer._optimizer, int(warmup_step_count), int(total_step_count),
                                               float(initial_lr))

    @property
    def warmup_step_count(self) -> int:
        return self._scheduler.warmup_step_count

    @property
    def total_step_count(self) -> int:
        return self._scheduler.total_step_count

    @property
    def initial_lr(self) -> float:
        return self._scheduler.initial_lr

    def factor(self, step: int) -> float:
        """The multiplier of initial_lr after `step` optimizer steps."""
        return self._scheduler.factor(int(step))

    def step(self) -> None:
        self._scheduler.step()
