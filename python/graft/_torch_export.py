"""The ONNX graphs behind graft.torch.Module: a torch.nn.Module exported with torch.onnx (dynamo),
its parameters and buffers turned into graph inputs, and the variants the wrapper runs (forward,
forward + gradients, vector-Jacobian product)."""

from __future__ import annotations

import dataclasses
import operator
import re
from typing import Any, Sequence

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from . import autodiff

# Ops that draw random numbers. Dropout is handled (its mask is kept); the rest cannot be
# recomputed identically in a separate backward run.
_RANDOM_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial"}
VJP_LOSS = "graft.vjp_loss"


class ExportError(RuntimeError):
    """torch.onnx.export could not export the module, or its graph is one graft.torch cannot run."""


@dataclasses.dataclass
class RunningStats:
    """A training-mode BatchNorm: its running statistics are updated as torch does."""

    x: str  # the normalized input
    mean: str  # buffer names, graph inputs
    var: str
    momentum: float
    count: int  # elements per channel in the batch
    rank: int
    dtype: np.dtype


@dataclasses.dataclass
class Exported:
    """The module's graph with parameters and buffers as inputs (named as in the state_dict)."""

    model: onnx.ModelProto
    inputs: list[str | None]  # graph input per flattened user input (None: unused by the graph)
    outputs: list[str]  # graph outputs, in the order of the flattened module output
    out_spec: Any  # torch.utils._pytree spec to rebuild the module's output structure
    params: list[str]
    buffers: list[str]
    running_stats: list[RunningStats]
    counters: list[str]  # buffers the module adds one to per call (num_batches_tracked)
    masks: list[str]  # Dropout masks (node outputs)

    def state_outputs(self) -> list[tuple[str, str]]:
        """(graph output, buffer) for each running statistic the forward model updates."""
        pairs = []
        for s in self.running_stats:
            pairs += [(f"graft.state/{s.mean}", s.mean), (f"graft.state/{s.var}", s.var)]
        return pairs


def export(module: torch.nn.Module, args: Sequence[torch.Tensor]) -> Exported:
    """Exports `module` on `args` in the modes its submodules are in. Raises ExportError."""
    name = type(module).__name__
    saved = [(b, b.detach().clone()) for b in module.buffers()]
    try:
        program = torch.onnx.export(module, tuple(args), dynamo=True, optimize=False, external_data=False,
                                    verbose=False)
    except Exception as e:  # the exporter raises many types; the cause is chained
        shapes = ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in args)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"graft.torch.Module: torch.onnx.export could not export {name} for inputs ({shapes}): "
                          f"{first}") from e
    finally:
        with torch.no_grad():  # the export may run the module
            for b, value in saved:
                b.copy_(value)
    model = program.model_proto
    ep = program.exported_program
    sig = ep.graph_signature
    fx_nodes = {n.name: n for n in ep.graph.nodes}
    inits = {i.name: i for i in model.graph.initializer}
    graph_inputs = [i.name for i in model.graph.input]

    for placeholder, pname in sig.inputs_to_parameters.items():
        if fx_nodes[placeholder].users and pname not in inits and pname not in graph_inputs:
            raise ExportError(f"graft.torch.Module: parameter '{pname}' of {name} is not an initializer of the "
                              "exported graph (folded into a constant?)")
    params = [i.name for i in model.graph.initializer if i.name in set(sig.inputs_to_parameters.values())]
    buffers = [i.name for i in model.graph.initializer if i.name in set(sig.inputs_to_buffers.values())]
    _initializers_to_inputs(model, params + buffers)

    user_inputs = [n for n in graph_inputs if n not in inits]
    inputs = [n if n in user_inputs else None for n in sig.user_inputs]
    outputs = [o.name for o in model.graph.output]
    if len(sig.user_inputs) != len(args) or len(outputs) != len(sig.user_outputs):
        raise ExportError(f"graft.torch.Module: the exported graph of {name} has {len(user_inputs)} inputs and "
                          f"{len(outputs)} outputs for {len(args)} tensor arguments and {len(sig.user_outputs)} "
                          "tensor results")

    running_stats, counters = _buffer_updates(model, ep, fx_nodes, name)
    masks = _keep_dropout_masks(model)
    return Exported(model, inputs, outputs, ep.call_spec.out_spec, params, buffers, running_stats, counters, masks)


def _initializers_to_inputs(model: onnx.ModelProto, names: Sequence[str]) -> None:
    inits = {i.name: i for i in model.graph.initializer}
    for n in names:
        t = inits[n]
        model.graph.input.append(helper.make_tensor_value_info(n, t.data_type, list(t.dims)))
    keep = [i for i in model.graph.initializer if i.name not in set(names)]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def _fx_node(node: onnx.NodeProto, fx_nodes: dict) -> Any:
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.fx_node":
            m = re.match(r"%(\S+) :", p.value)
            return fx_nodes.get(m.group(1)) if m else None
    return None


def _buffer_updates(model: onnx.ModelProto, ep: Any, fx_nodes: dict, name: str) -> tuple[list[RunningStats], list[str]]:
    """Training-mode BatchNorm exports as the inference op (the exporter drops the running-statistics
    update): switch it to training_mode=1 and record its statistics. Returns them and the buffers
    incremented per call."""
    sig = ep.graph_signature
    placeholders = {v: k for k, v in sig.inputs_to_buffers.items()}
    counters, bn_nodes = [], set()
    bn_functional = torch.ops.aten._native_batch_norm_legit_functional.default
    for out_name, buffer in sig.buffers_to_mutate.items():
        src = fx_nodes[out_name]
        if src.target == operator.getitem and src.args[0].target == bn_functional and src.args[1] in (3, 4):
            bn_nodes.add(src.args[0].name)
        elif (src.target == torch.ops.aten.add.Tensor and src.args[1] == 1 and getattr(src.args[0], "name", None)
              == placeholders.get(buffer)):
            counters.append(buffer)
        else:
            raise ExportError(f"graft.torch.Module: {name} updates buffer '{buffer}' in forward with {src.target}, "
                              "which graft.torch does not reproduce")
    stats = []
    for node in model.graph.node:
        fx = _fx_node(node, fx_nodes) if node.op_type == "BatchNormalization" else None
        if fx is None or fx.name not in bn_nodes:
            continue
        if not fx.args[5]:
            raise ExportError(f"graft.torch.Module: BatchNorm node '{node.name}' updates its statistics "
                              "outside training")
        node.attribute.append(helper.make_attribute("training_mode", 1))
        val = fx.args[0].meta["val"]
        dtype = torch.empty((), dtype=val.dtype).numpy().dtype
        stats.append(RunningStats(node.input[0], node.input[3], node.input[4], float(fx.args[6]),
                                  val.numel() // val.shape[1], val.dim(), dtype))
    if len(stats) != len(bn_nodes):
        raise ExportError(f"graft.torch.Module: found {len(stats)} of the {len(bn_nodes)} training-mode BatchNorm "
                          f"nodes of {name} in the exported graph")
    return stats, counters


def _keep_dropout_masks(model: onnx.ModelProto) -> list[str]:
    """Gives each training-mode Dropout its mask output: the gradient needs it, and the
    vector-Jacobian model takes it as an input so backward reuses forward's mask."""
    masks = []
    for node in model.graph.node:
        if node.op_type == "Dropout" and len(node.input) >= 3 and node.input[2]:
            if len(node.output) < 2:
                node.output.append(f"{node.output[0]}.graft_mask")
            masks.append(node.output[1])
    return masks


def forward_model(g: Exported, with_masks: bool) -> onnx.ModelProto:
    """The module's outputs, then the updated running statistics ("graft.state/<buffer>"), then
    (with_masks) the Dropout masks."""
    m = onnx.ModelProto()
    m.CopyFrom(g.model)
    for i, s in enumerate(g.running_stats):
        p = f"graft.bn{i}/"
        m.graph.initializer.extend([
            numpy_helper.from_array(np.array([0] + list(range(2, s.rank)), np.int64), p + "axes"),
            # torch keeps the unbiased batch variance in running_var.
            numpy_helper.from_array(np.array(1.0 / max(s.count - 1, 1), s.dtype), p + "inv_n1"),
            numpy_helper.from_array(np.array(1.0 - s.momentum, s.dtype), p + "keep"),
            numpy_helper.from_array(np.array(s.momentum, s.dtype), p + "take")])
        m.graph.node.extend([
            helper.make_node("ReduceMean", [s.x, p + "axes"], [p + "mean"], keepdims=0),
            helper.make_node("ReduceMean", [s.x, p + "axes"], [p + "mean_k"], keepdims=1),
            helper.make_node("Sub", [s.x, p + "mean_k"], [p + "d"]),
            helper.make_node("ReduceSumSquare", [p + "d", p + "axes"], [p + "ss"], keepdims=0),
            helper.make_node("Mul", [p + "ss", p + "inv_n1"], [p + "var"])])
        for k, (stat, batch) in enumerate(((s.mean, p + "mean"), (s.var, p + "var"))):
            m.graph.node.extend([helper.make_node("Mul", [stat, p + "keep"], [f"{p}old{k}"]),
                                 helper.make_node("Mul", [batch, p + "take"], [f"{p}new{k}"]),
                                 helper.make_node("Add", [f"{p}old{k}", f"{p}new{k}"], [f"graft.state/{stat}"])])
            m.graph.output.append(helper.make_tensor_value_info(f"graft.state/{stat}",
                                                                helper.np_dtype_to_tensor_dtype(s.dtype), None))
    if with_masks:
        for mask in g.masks:
            m.graph.output.append(helper.make_tensor_value_info(mask, TensorProto.BOOL, None))
    return m


def differentiable_outputs(g: Exported) -> list[str]:
    types = {o.name: o.type.tensor_type.elem_type for o in g.model.graph.output}
    floats = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16)
    return [o for o in g.outputs if types[o] in floats]


def seed_name(output: str) -> str:
    return f"{output}.graft_seed"


def vjp_model(g: Exported) -> onnx.ModelProto:
    """Takes the Dropout masks and a seed per floating-point output ("<out>.graft_seed") and outputs
    graft.vjp_loss = sum_i ReduceSum(out_i * seed_i), whose gradient is the vector-Jacobian product.
    Raises NotImplementedError when the graph draws other random numbers."""
    m = onnx.ModelProto()
    m.CopyFrom(g.model)
    random = sorted({n.op_type for n in m.graph.node if n.op_type in _RANDOM_OPS})
    if random:
        raise NotImplementedError(f"graft.torch.Module: the graph draws random numbers ({', '.join(random)}) that a "
                                  "separate backward run would draw again; return a scalar loss from the module so "
                                  "forward and backward run together")
    nodes = []
    for node in m.graph.node:
        if node.op_type == "Dropout" and len(node.output) >= 2 and node.output[1] in g.masks:
            nodes += _dropout_with_mask(node)
        else:
            nodes.append(node)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    for mask in g.masks:
        m.graph.input.append(helper.make_tensor_value_info(mask, TensorProto.BOOL, None))
    types = {o.name: o for o in m.graph.output}
    terms = []
    for out in differentiable_outputs(g):
        seed = onnx.ValueInfoProto()
        seed.CopyFrom(types[out])
        seed.name = seed_name(out)
        m.graph.input.append(seed)
        m.graph.node.extend([helper.make_node("Mul", [out, seed.name], [f"{out}.graft_weighted"]),
                             helper.make_node("ReduceSum", [f"{out}.graft_weighted"], [f"{out}.graft_term"],
                                              keepdims=0)])
        terms.append(f"{out}.graft_term")
    if not terms:
        raise NotImplementedError("graft.torch.Module: the module has no floating-point output to differentiate")
    m.graph.node.append(helper.make_node("Sum", terms, [VJP_LOSS]))
    elem = types[differentiable_outputs(g)[0]].type.tensor_type.elem_type
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info(VJP_LOSS, elem, []))
    return m


def _dropout_with_mask(node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """y = training ? x * (mask ? 1 / (1 - ratio) : 0) : x, with the mask a graph input."""
    x, ratio, training = node.input[0], node.input[1], node.input[2]
    y, mask = node.output[0], node.output[1]
    p = f"{y}.graft_dropout/"

    def scalar(name: str, value: float) -> list[onnx.NodeProto]:
        return [helper.make_node("Constant", [], [p + name + "_f"],
                                 value=numpy_helper.from_array(np.array(value, np.float32))),
                helper.make_node("CastLike", [p + name + "_f", x], [p + name])]

    nodes = scalar("one", 1.0) + scalar("zero", 0.0)
    nodes += [helper.make_node("CastLike", [ratio, x], [p + "ratio"])] if ratio else scalar("ratio", 0.5)
    nodes += [helper.make_node("Sub", [p + "one", p + "ratio"], [p + "keep"]),
              helper.make_node("Div", [p + "one", p + "keep"], [p + "scale"]),
              helper.make_node("Where", [mask, p + "scale", p + "zero"], [p + "factor"]),
              helper.make_node("Mul", [x, p + "factor"], [p + "dropped"]),
              helper.make_node("Where", [training, p + "dropped", x], [y])]
    return nodes


def gradient(model: onnx.ModelProto, loss: str, wrt: Sequence[str], module_name: str) -> onnx.ModelProto:
    """autodiff.gradient_model, its errors naming the module."""
    from . import NotImplemented as GraftNotImplemented

    try:
        return autodiff.gradient_model(model, loss=loss, wrt=list(wrt))
    except GraftNotImplemented as e:
        raise GraftNotImplemented(f"graft.torch.Module: cannot differentiate the exported graph of {module_name}: "
                                  f"{e}") from e
