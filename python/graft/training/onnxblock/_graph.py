"""Graph helpers shared by the blocks: fresh value names, graph inputs and outputs by name."""

from __future__ import annotations

import itertools
from typing import Sequence

import onnx

_counter = itertools.count(1)


def fresh_name(token: str) -> str:
    """A value or node name no other block call returns ("graft::<token>::<n>")."""
    return f"graft::{token}::{next(_counter)}"


def graph_output(model: onnx.ModelProto, name: str) -> onnx.ValueInfoProto:
    for o in model.graph.output:
        if o.name == name:
            return o
    raise LookupError(f"'{name}' is not an output of the graph")


def graph_input(model: onnx.ModelProto, name: str) -> onnx.ValueInfoProto:
    for i in model.graph.input:
        if i.name == name:
            return i
    raise LookupError(f"'{name}' is not an input of the graph")


def value_exists(model: onnx.ModelProto, name: str) -> bool:
    """Whether a node reads or writes `name`, or it is a graph input or initializer."""
    g = model.graph
    return (any(name in n.input or name in n.output for n in g.node) or any(i.name == name for i in g.input)
            or any(t.name == name for t in g.initializer))


def set_outputs(model: onnx.ModelProto, names: str | Sequence[str]) -> None:
    """Makes `names` the graph's outputs, typed from the existing outputs, value_info or inputs
    (run shape inference first); an output dropped keeps its type as value_info. Raises
    LookupError naming a value of unknown type."""
    if isinstance(names, str):
        names = [names]
    g = model.graph
    known = {v.name: v for v in list(g.value_info) + list(g.input) + list(g.output)}
    outputs = []
    for name in names:
        if name not in known:
            raise LookupError(f"'{name}' cannot be a graph output: its type is unknown (no value_info, "
                              "and shape inference could not infer it)")
        out = onnx.ValueInfoProto()
        out.CopyFrom(known[name])
        outputs.append(out)
    typed = {v.name for v in g.value_info}
    dropped = [o for o in g.output if o.name not in names and o.name not in typed]
    g.value_info.extend(dropped)
    del g.output[:]
    g.output.extend(outputs)


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with the value_info ONNX shape inference finds (unknown ops are left untyped)."""
    return onnx.shape_inference.infer_shapes(model)
