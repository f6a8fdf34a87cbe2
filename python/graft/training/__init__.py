"""Training with graft.

`TrainingSession` trains a forward ONNX model with its loss: the gradient graph and an optimizer
step, run with the parameters and optimizer state kept between steps. The rest follows
onnxruntime.training: `generate_artifacts` (graft.training.artifacts) writes the training, eval
and optimizer models and a checkpoint, graft.training.onnxblock builds such models from blocks,
and graft.training.api runs them (CheckpointState, Module, Optimizer, LinearLRScheduler).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import onnx

from .. import _C
from ..session import _from_native, _session_providers, _to_native
from .artifacts import LossType, OptimType, generate_artifacts
from .dataset import read_dataset, write_dataset

__all__ = ["LossType", "OptimType", "TrainingSession", "generate_artifacts"]

_DEFAULT_EPS = {"adagrad": 1e-10}


class TrainingSession:
    """`train_step(feeds)` runs forward, backward and one `optimizer` update ("sgd", "adam",
    "adamw", "adagrad", "rmsprop", "lamb") and returns the loss; `eval_step(feeds)` runs the
    forward model with the current parameters.

    Hyper-parameters and their defaults are torch.optim's: momentum, nesterov (SGD; momentum also
    RMSprop's), weight_decay (0.01 for AdamW, 0 otherwise), betas (Adam, AdamW, LAMB), eps (1e-10
    for Adagrad, 1e-8 otherwise), lr_decay (Adagrad), alpha and centered (RMSprop).
    max_grad_norm > 0 first scales all gradients so that their global L2 norm is at most that
    value, as torch.nn.utils.clip_grad_norm_ does. intra_op_num_threads is SessionOptions' (0:
    all cores); optimized_model_filepath, if given, receives the training-step model as it runs
    (gradients, collectives, update). enable_profiling times every node of each train_step;
    end_profiling() writes the trace.

    Data parallel: launched with `mpirun -np N` (N > 1), the session trains data-parallel unless
    data_parallel=False: every rank feeds its own share of the batch, gradients are averaged
    across ranks (com.graft.AllReduce nodes in buckets of about bucket_mb MiB, placed as backward
    produces them, before clipping and the update), rank 0's initial parameters and optimizer
    state are broadcast to all, and save_checkpoint writes from rank 0 only (all ranks call it).
    A checkpoint resumes only with the world size that wrote it. data_parallel=True in a single
    process keeps the all-reduce nodes (they copy). zero_stage=1 adds ZeRO stage 1: each rank
    updates, and keeps the optimizer state of, its share of the parameters and broadcasts their
    new values; `state()` then holds all parameters but only this rank's optimizer state, and
    rank 0 collects the rest for save_checkpoint.

    providers, provider_options: execution providers in preference order and their options, in
    InferenceSession's forms (default: the host's). With ["CUDAExecutionProvider",
    "CPUExecutionProvider"] on a machine with a GPU the data-parallel collectives run over NCCL on the device, the gradients copied there and back.

    mixed_precision="float16" or "bfloat16" computes MatMul, Gemm, Conv and ConvTranspose in that
    type from float32 master weights (torch.autocast's products), everything else in float32.
    float16 scales the loss dynamically (torch.amp.GradScaler): it starts at loss_scale, a step
    whose update is not finite is skipped whole and halves the scale, growth_interval finite steps
    in a row double it; `loss_scale` and `skipped_steps` report where it stands. bfloat16 trains
    unscaled, still skipping non-finite updates.

    Threads: the session's calls are serialized. A call from a second thread waits for the one
    running (without holding the GIL), so steps from several threads all count, one after the
    other. load_checkpoint takes a file all or nothing: a refused one leaves the session as it
    was."""

    def __init__(self, model: onnx.ModelProto | bytes | str | os.PathLike, loss: str,
                 params: Sequence[str] | None = None, optimizer: str = "adamw", lr: float = 1e-3, *,
                 momentum: float = 0.0, nesterov: bool = False, weight_decay: float | None = None,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float | None = None, lr_decay: float = 0.0,
                 alpha: float = 0.99, centered: bool = False, max_grad_norm: float = 0.0,
                 intra_op_num_threads: int = 0, data_parallel: bool | None = None, bucket_mb: float = 25.0,
                 zero_stage: int = 0,
                 optimized_model_filepath: str | os.PathLike | None = None, enable_profiling: bool = False,
                 profile_file_prefix: str = "graft_training_profile",
                 providers: Sequence[str | tuple] | None = None, provider_options: Sequence[dict] | None = None,
                 mixed_precision: str | None = None,
                 loss_scale: float = 65536.0, growth_interval: int = 2000) -> None:
        if isinstance(model, onnx.ModelProto):
            data = model.SerializeToString()
        elif isinstance(model, (bytes, bytearray)):
            data = bytes(model)
        else:
            data = onnx.load(os.fspath(model)).SerializeToString()
        if weight_decay is None:
            weight_decay = 0.01 if optimizer == "adamw" else 0.0
        if eps is None:
            eps = _DEFAULT_EPS.get(optimizer, 1e-8)
        provider_names, options = _session_providers(providers, provider_options)
        self._sess = _C.TrainingSession(data, loss, list(params or []), optimizer, lr, momentum, nesterov,
                                        weight_decay, betas[0], betas[1], eps, lr_decay=lr_decay, alpha=alpha,
                                        centered=centered, max_grad_norm=max_grad_norm,
                                        intra_op_num_threads=intra_op_num_threads, data_parallel=data_parallel,
                                        bucket_mb=bucket_mb, zero_stage=zero_stage,
                                        optimized_model_filepath=os.fspath(optimized_model_filepath or ""),
                                        enable_profiling=enable_profiling, profile_file_prefix=profile_file_prefix,
                                        providers=provider_names, provider_options=options,
                                        mixed_precision=mixed_precision or "", loss_scale=loss_scale,
                                        growth_interval=growth_interval)

    def train_step(self, feeds: dict[str, Any]) -> float:
        return self._sess.train_step({k: _to_native(v, None) for k, v in feeds.items()})

    def forward_backward(self, feeds: dict[str, Any]) -> float:
        """Forward and backward only; gradients add up until `optimizer_step` (onnxruntime's
        Module.train_step semantics). Returns the loss."""
        return self._sess.forward_backward({k: _to_native(v, None) for k, v in feeds.items()})

    def end_profiling(self) -> str:
        """With enable_profiling: writes the per-node timings of the train_step calls so far as a
        Chrome trace (JSON, as InferenceSession.end_profiling) and returns its path."""
        return self._sess.end_profiling()

    def optimizer_step(self) -> None:
        """Applies the accumulated gradients."""
        self._sess.optimizer_step()

    def lazy_reset_grad(self) -> None:
        """The next forward_backward starts the accumulation afresh."""
        self._sess.lazy_reset_grad()

    def eval_step(self, feeds: dict[str, Any]) -> list[Any]:
        return [_from_native(v) for v in self._sess.eval_step({k: _to_native(v, None) for k, v in feeds.items()})]

    def state(self) -> dict[str, np.ndarray]:
        """Parameters and optimizer state, by name."""
        return {k: _from_native(v) for k, v in self._sess.state().items()}

    def parameters(self) -> list[str]:
        """What the optimizer trains: `params`, or by default every float initializer but
        BatchNormalization running statistics."""
        return list(self._sess.parameters())

    def running_statistics(self) -> list[str]:
        """BatchNormalization running means and variances (of nodes in training mode) that each
        step updates, as torch updates a module's buffers in train mode; they are in state(),
        checkpoints and exported models, and eval_step normalizes with them."""
        return list(self._sess.running_statistics())

    @property
    def learning_rate(self) -> float:
        return self._sess.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._sess.learning_rate = float(value)

    @property
    def data_parallel(self) -> bool:
        """Whether gradients are averaged across ranks."""
        return self._sess.data_parallel

    @property
    def world_size(self) -> int:
        """The number of ranks gradients are averaged over (1 when not data-parallel)."""
        return self._sess.world_size

    @property
    def zero_stage(self) -> int:
        return self._sess.zero_stage

    @property
    def loss_scale(self) -> float:
        return self._sess.loss_scale

    @property
    def skipped_steps(self) -> int:
        return self._sess.skipped_steps

    @property
    def step(self) -> int:
        return self._sess.step

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Data-parallel over several ranks: every rank calls it, rank 0 writes."""
        self._sess.save_checkpoint(os.fspath(path))

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        self._sess.load_checkpoint(os.fspath(path))

    def export_model_for_inferencing(self, path: str | os.PathLike, outputs: Sequence[str]) -> None:
        """Writes the forward model with the trained weights, keeping only what computes `outputs`."""
        self._sess.export_model_for_inferencing(os.fspath(path), list(outputs))
