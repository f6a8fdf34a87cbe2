"""graft.torch.Module: run a torch.nn.Module's forward and backward with graft inside an ordinary
PyTorch training loop.

    net = graft.torch.Module(model, (x0,))
    opt = torch.optim.AdamW(net.parameters())
    loss = loss_fn(net(x), y); loss.backward(); opt.step()

The module is exported with torch.onnx (dynamo); its parameters and buffers become inputs of the
graft graphs, so the current torch values are used on every call and the gradients land in the
parameters' `.grad`, accumulating as in PyTorch. Two ways to differentiate:

- the module returns a scalar (it computes its loss) and is in training mode: forward runs forward
  and backward in one graft call and keeps the gradients; backward scales them by grad_output;
- otherwise backward runs a vector-Jacobian model (forward graph, a seed input per output and
  loss = sum(out_i * seed_i)) that recomputes the forward. Dropout masks are carried from forward
  to backward; other random ops are refused there.

The exporter writes a training-mode BatchNorm as the inference op and drops the update of its
running statistics; the graphs here put training_mode=1 back and compute the update (unbiased
batch variance, torch's momentum), which is copied into the module's buffers after each call.

What is copied: on the CPU, torch tensors are handed to graft as NumPy views
(`t.detach().numpy()`, no copy unless a tensor is not contiguous), but graft's binding copies every
input, parameter and buffer into its own memory on each call (one memcpy per tensor, and again in
backward on the vector-Jacobian path). Outputs and gradients come back as NumPy arrays over graft's
buffers and are wrapped with torch.from_dlpack without a copy; grad_output scaling on the scalar
path allocates one tensor per gradient unless grad_output is 1, and adding into an existing `.grad`
is torch's.

On a GPU (the module's parameters, buffers and inputs all on one CUDA device) the sessions run with
the CUDA provider on that device and CPU fallback, TF32 where torch.backends.cuda.matmul.allow_tf32
allows it, and tensors cross in both directions through DLPack (graft.OrtValue.from_dlpack,
torch.from_dlpack) without copies: inputs, parameters and buffers are read where torch keeps them,
and outputs and gradients stay in graft's device memory. graft's work is ordered after torch's
current stream and torch's after graft's.

Not covered: CPU and CUDA tensors only, all on one device; keyword arguments; a module that mutates
buffers other than BatchNorm's statistics and counters; a parameter that feeds only integer outputs
gets a zero gradient (PyTorch leaves it None). Each new input shape, device or train/eval mode costs
one export.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils import _pytree

from . import _C
from . import _torch_export as tx
from .iobinding import OrtValue
from .session import InferenceSession, SessionOptions, get_available_providers

_GRAD = _C.names.GRAD_SUFFIX

ExportError = tx.ExportError

__all__ = ["ExportError", "Module"]


class Module(torch.nn.Module):
    """Wraps `module`; call it like the module (positional tensor arguments). `sample_inputs` are
    exported at construction, so an export failure (ExportError) or an op without a gradient
    (graft.NotImplemented) surfaces here. `sess_options` go to every graft session."""

    def __init__(self, module: torch.nn.Module, sample_inputs: Sequence[torch.Tensor] | torch.Tensor,
                 sess_options: SessionOptions | None = None) -> None:
        super().__init__()
        self.module = module
        self._sess_options = sess_options
        self._compiled: dict[tuple, _Compiled] = {}
        sample = (sample_inputs,) if isinstance(sample_inputs, torch.Tensor) else tuple(sample_inputs)
        c = self._compile(sample)
        wrt = tuple(n for n in c.graph.params if module.get_parameter(n).requires_grad)
        wrt += tuple(n for n, x in zip(c.graph.inputs, sample) if n and x.requires_grad)
        if wrt:
            c.gradient_session(c.fast_path_possible() and c.training, wrt)

    def forward(self, *inputs: torch.Tensor) -> Any:
        c = self._compile(inputs)
        params = [self.module.get_parameter(n) for n in c.graph.params]
        grad = torch.is_grad_enabled() and any(t.requires_grad for t in (*inputs, *params))
        if not grad:
            outs = c.forward(self, inputs, params, with_masks=False)[0]
        else:
            outs = _GraftFunction.apply(c, self, len(inputs), *inputs, *params)
        return _pytree.tree_unflatten(list(outs), c.graph.out_spec)

    def _compile(self, inputs: Sequence[torch.Tensor]) -> "_Compiled":
        for i, x in enumerate(inputs):
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"graft.torch.Module: argument {i} is a {type(x).__name__}, expected a torch.Tensor")
        device = self._device(inputs)
        modes = tuple(m.training for m in self.module.modules())
        key = (str(device), modes, tuple((tuple(x.shape), x.dtype) for x in inputs))
        if key not in self._compiled:
            graph = tx.export(self.module, [x.detach() for x in inputs])
            self._compiled[key] = _Compiled(graph, type(self.module).__name__, self.module.training,
                                            self._sess_options, device)
        return self._compiled[key]

    def _device(self, inputs: Sequence[torch.Tensor]) -> torch.device:
        """The one device of the inputs, parameters and buffers (CPU when there are none)."""
        named = [(f"argument {i}", x) for i, x in enumerate(inputs)]
        named += [(f"parameter '{n}'", p) for n, p in self.module.named_parameters()]
        named += [(f"buffer '{n}'", b) for n, b in self.module.named_buffers()]
        devices: dict[torch.device, str] = {}
        for what, t in named:
            devices.setdefault(t.device, what)
        if len(devices) > 1:
            where = ", ".join(f"{what} on {d}" for d, what in devices.items())
            raise ValueError(f"graft.torch.Module: the tensors are on several devices ({where}); move them to one")
        device = next(iter(devices), torch.device("cpu"))
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"graft.torch.Module: {devices[device]} is on {device}; graft.torch runs CPU and CUDA "
                             "tensors")
        return device


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _torch(a: np.ndarray) -> torch.Tensor:
    return torch.from_dlpack(a)


def _cuda_providers(device: torch.device) -> list:
    available = get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise RuntimeError(f"graft.torch.Module: the tensors are on {device}, but graft has no CUDAExecutionProvider "
                           f"here (available: {', '.join(available)})")
    # Float32 products in TF32 exactly where torch allows them for its own.
    options = {"device_id": device.index, "use_tf32": torch.backends.cuda.matmul.allow_tf32}
    return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]


class _Compiled:
    """The graft sessions for one export (one input signature and mode), built on first use."""

    def __init__(self, graph: tx.Exported, module_name: str, training: bool,
                 sess_options: SessionOptions | None, device: torch.device) -> None:
        self.graph, self.module_name, self.training = graph, module_name, training
        self._sess_options = sess_options
        self.device = device
        self._on_gpu = device.type == "cuda"
        self._forward: dict[bool, InferenceSession] = {}
        self._gradients: dict[tuple, tuple[InferenceSession, list[str]]] = {}

    def _session(self, model) -> InferenceSession:
        providers = _cuda_providers(self.device) if self._on_gpu else None
        return InferenceSession(model.SerializeToString(), self._sess_options, providers=providers)

    def feed(self, t: torch.Tensor) -> Any:
        """A torch tensor as a graft feed: a NumPy view on the CPU, the device memory itself on a GPU."""
        if self._on_gpu:
            with torch.cuda.device(self.device):  # torch lends tensors of its current device only
                return OrtValue.from_dlpack(t.detach().contiguous())
        return _numpy(t)

    def run(self, sess: InferenceSession, names: list[str] | None, feeds: dict) -> list[Any]:
        """The outputs as NumPy arrays (CPU) or OrtValues left where they were made (GPU)."""
        if self._on_gpu:
            return sess.run_with_ort_values(names, feeds)
        return sess.run(names, feeds)

    def to_torch(self, value: Any) -> torch.Tensor:
        t = _torch(value)
        # On a GPU an output a CPU fallback node made is in host memory.
        return t if t.device == self.device else t.to(self.device)

    def fast_path_possible(self) -> bool:
        outs = tx.differentiable_outputs(self.graph)
        if len(self.graph.outputs) != 1 or len(outs) != 1:
            return False
        shape = next(o for o in self.graph.model.graph.output if o.name == outs[0]).type.tensor_type.shape
        return len(shape.dim) == 0

    def feeds(self, owner: Module, inputs: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> dict:
        g = self.graph
        feeds = {n: self.feed(x) for n, x in zip(g.inputs, inputs) if n}
        feeds.update({n: self.feed(p) for n, p in zip(g.params, params)})
        feeds.update({n: self.feed(owner.module.get_buffer(n)) for n in g.buffers})
        return feeds

    def update_buffers(self, owner: Module, values: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for out, buffer in self.graph.state_outputs():
                owner.module.get_buffer(buffer).copy_(self.to_torch(values[out]))
            for buffer in self.graph.counters:
                owner.module.get_buffer(buffer).add_(1)

    def forward(self, owner: Module, inputs, params, with_masks: bool) -> tuple[list[torch.Tensor], dict]:
        """Runs the forward model; returns the outputs as tensors and the masks (as run returns
        them) by name."""
        if with_masks not in self._forward:
            self._forward[with_masks] = self._session(tx.forward_model(self.graph, with_masks))
        sess = self._forward[with_masks]
        names = [o.name for o in sess.get_outputs()]
        values = dict(zip(names, self.run(sess, None, self.feeds(owner, inputs, params))))
        self.update_buffers(owner, values)
        outs = [self.to_torch(values[o]) for o in self.graph.outputs]
        return outs, {m: values[m] for m in self.graph.masks if m in values}

    def gradient_session(self, fast: bool, wrt: tuple[str, ...]) -> tuple[InferenceSession, list[str]]:
        """The forward + gradient model (fast) or the vector-Jacobian model, and its output names."""
        key = (fast, wrt)
        if key not in self._gradients:
            if fast:
                model = tx.gradient(tx.forward_model(self.graph, False), self.graph.outputs[0], wrt, self.module_name)
            else:
                model = tx.gradient(tx.vjp_model(self.graph), tx.VJP_LOSS, wrt, self.module_name)
            sess = self._session(model)
            self._gradients[key] = (sess, [o.name for o in sess.get_outputs()])
        return self._gradients[key]


class _GraftFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, c: _Compiled, owner: Module, n_inputs: int, *tensors: torch.Tensor):
        inputs, params = tensors[:n_inputs], tensors[n_inputs:]
        g = c.graph
        names = list(g.inputs) + list(g.params)
        floating = [t.is_floating_point() for t in tensors]
        need = [bool(ctx.needs_input_grad[3 + i]) and floating[i] and names[i] is not None for i in range(len(tensors))]
        wrt = tuple(n for n, k in zip(names, need) if k)
        ctx.c, ctx.owner, ctx.n_inputs, ctx.need, ctx.wrt = c, owner, n_inputs, need, wrt
        ctx.fast = not wrt or (c.training and c.fast_path_possible())
        if not wrt:  # what requires grad does not reach the graph
            outs = c.forward(owner, inputs, params, with_masks=False)[0]
            ctx.grads = [None] * len(tensors)
        elif ctx.fast:
            sess, out_names = c.gradient_session(True, wrt)
            values = dict(zip(out_names, c.run(sess, None, c.feeds(owner, inputs, params))))
            c.update_buffers(owner, values)
            ctx.grads = [c.to_torch(values[n + _GRAD]) if k else None for n, k in zip(names, need)]
            outs = [c.to_torch(values[g.outputs[0]])]
        else:
            outs, ctx.masks = c.forward(owner, inputs, params, with_masks=True)
            ctx.save_for_backward(*tensors)
        ctx.mark_non_differentiable(*[o for o in outs if not o.is_floating_point()])
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grad_outputs: torch.Tensor):
        if ctx.fast:
            scale = grad_outputs[0]
            one = scale.numel() == 1 and float(scale) == 1.0
            grads = [None if g is None else (g if one else g * scale) for g in ctx.grads]
            ctx.grads = None
        else:
            c, tensors = ctx.c, ctx.saved_tensors
            sess, out_names = c.gradient_session(False, ctx.wrt)
            feeds = c.feeds(ctx.owner, tensors[:ctx.n_inputs], tensors[ctx.n_inputs:])
            feeds.update(ctx.masks)
            diff = set(tx.differentiable_outputs(c.graph))
            for out, go in zip(c.graph.outputs, grad_outputs):
                if out in diff:
                    feeds[tx.seed_name(out)] = c.feed(go.contiguous())
            wanted = [n + _GRAD for n in ctx.wrt]
            values = dict(zip(wanted, c.run(sess, wanted, feeds)))
            names = list(c.graph.inputs) + list(c.graph.params)
            grads = [c.to_torch(values[n + _GRAD]) if k else None for n, k in zip(names, ctx.need)]
        return (None, None, None, *grads)
