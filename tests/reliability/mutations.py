"""Seeded mutations of ONNX models for mutation_sweep.py.

Protobuf-level mutations edit a ModelProto so that it still parses but its meaning breaks:
attribute values, dimensions, element types, nodes and graph inputs/outputs dropped or
duplicated, edges renamed to dangling names, op types and opset versions changed, tensor data
truncated, extreme element values (indices, sizes, NaN), the graph nested in If/Loop subgraphs.
Byte-level mutations edit the serialized file: bit flips, truncation, insertion, deletion. Every
choice comes from the `random.Random` passed in, so a (seed, index) pair always gives the same
mutant.
"""

from __future__ import annotations

import random

import numpy as np
from onnx import AttributeProto, GraphProto, ModelProto, TensorProto, ValueInfoProto, helper, numpy_helper

INTS = [0, -1, 1, 2, -2, 3, 7, 64, 1000, 2**31 - 1, -(2**31), 2**32, 2**62, 2**63 - 1, -(2**63)]
FLOATS = [0.0, -0.0, -1.0, 1e-30, 1e30, 3.4e38, float("inf"), float("-inf"), float("nan"), 0.5, 2.0]
DIMS = [0, -1, -7, 1, 2, 3, 1000, 2**31 - 1, 2**40, 2**63 - 1]
ELEM_TYPES = list(range(27)) + [30, 99, -1]
OPSET_VERSIONS = [0, -1, 1, 5, 7, 9, 11, 13, 17, 18, 21, 22, 23, 25, 26, 100, 10**9, 2**62]
DOMAINS = ["", "ai.onnx.ml", "com.microsoft", "com.graft", "ai.onnx.preview.training", "bogus.domain"]
ATTRIBUTE_TYPES = [AttributeProto.FLOAT, AttributeProto.INT, AttributeProto.STRING, AttributeProto.TENSOR,
                   AttributeProto.GRAPH, AttributeProto.FLOATS, AttributeProto.INTS, AttributeProto.STRINGS,
                   AttributeProto.GRAPHS, AttributeProto.UNDEFINED]


def graphs(graph: GraphProto):
    """`graph` and every graph nested in its nodes' attributes, depth first."""
    yield graph
    for node in graph.node:
        for a in node.attribute:
            if a.type == AttributeProto.GRAPH:
                yield from graphs(a.g)
            for g in a.graphs:
                yield from graphs(g)


def _nodes(model: ModelProto):
    return [(g, n) for g in graphs(model.graph) for n in g.node]


def _tensors(model: ModelProto):
    """Initializers and tensor attributes of every graph."""
    out = [t for g in graphs(model.graph) for t in g.initializer]
    out += [a.t for _, n in _nodes(model) for a in n.attribute if a.type == AttributeProto.TENSOR]
    return out


def _value_infos(model: ModelProto):
    return [v for g in graphs(model.graph) for v in (*g.input, *g.output, *g.value_info)
            if v.type.HasField("tensor_type")]


def _names(graph: GraphProto) -> list[str]:
    names = [v.name for v in graph.input] + [t.name for t in graph.initializer]
    return names + [o for n in graph.node for o in n.output if o]


def _tensor(t: TensorProto, rng: random.Random) -> str:
    choice = rng.randrange(5)
    if choice == 0 and t.dims:
        i = rng.randrange(len(t.dims))
        t.dims[i] = rng.choice(DIMS)
        return f"dims[{i}]={t.dims[i]}"
    if choice == 1:
        t.dims.append(rng.choice(DIMS[:6]))
        return f"dims+={t.dims[-1]}"
    if choice == 2:
        t.data_type = rng.choice(ELEM_TYPES)
        return f"data_type={t.data_type}"
    if choice == 3 and t.raw_data:
        cut = rng.randrange(len(t.raw_data))
        t.raw_data = t.raw_data[:cut]
        return f"raw_data truncated to {cut} bytes"
    if choice == 3:
        for field in ("float_data", "int32_data", "int64_data", "double_data", "string_data", "uint64_data"):
            values = getattr(t, field)
            if len(values):
                del values[rng.randrange(len(values)):]
                return f"{field} truncated to {len(values)}"
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    location = rng.choice(["missing.bin", "../../etc/passwd", "/etc/passwd", ""])
    entries = {"location": location}
    if rng.random() < 0.5:
        entries["offset"], entries["length"] = str(rng.choice(INTS)), str(rng.choice(INTS))
    for k, v in entries.items():
        t.external_data.add(key=k, value=v)
    return f"external data {entries}"


def attribute(model, rng, ctx) -> str | None:
    candidates = [(n, a) for _, n in _nodes(model) for a in n.attribute]
    if not candidates:
        return None
    node, a = rng.choice(candidates)
    where = f"attribute {node.op_type}.{a.name}"
    roll = rng.random()
    if roll < 0.08:
        node.attribute.remove(a)
        return f"{where} dropped"
    if roll < 0.15:
        a.type = rng.choice(ATTRIBUTE_TYPES)
        return f"{where} type={a.type}"
    if roll < 0.2:
        extra = node.attribute.add(name=rng.choice(ctx["attribute_names"]), type=AttributeProto.INT,
                                   i=rng.choice(INTS))
        return f"attribute {node.op_type}.{extra.name}={extra.i} added"
    if a.type == AttributeProto.INT:
        a.i = rng.choice(INTS)
        return f"{where}={a.i}"
    if a.type == AttributeProto.FLOAT:
        a.f = rng.choice(FLOATS)
        return f"{where}={a.f}"
    if a.type == AttributeProto.STRING:
        a.s = rng.choice([b"", b"\xff\xfe", b"bogus", b"x" * 10000, rng.choice(ctx["strings"])])
        return f"{where}={a.s[:20]!r}"
    if a.type in (AttributeProto.INTS, AttributeProto.FLOATS, AttributeProto.STRINGS):
        values = {AttributeProto.INTS: a.ints, AttributeProto.FLOATS: a.floats,
                  AttributeProto.STRINGS: a.strings}[a.type]
        pool = {AttributeProto.INTS: INTS, AttributeProto.FLOATS: FLOATS,
                AttributeProto.STRINGS: [b"", b"bogus"]}[a.type]
        choice = rng.randrange(4)
        if choice == 0 and len(values):
            i = rng.randrange(len(values))
            values[i] = rng.choice(pool)
            return f"{where}[{i}]={values[i]!r}"
        if choice == 1:
            del values[:]
            return f"{where} emptied"
        if choice == 2 and len(values):
            values.extend(list(values) * rng.choice([1, 63]))
            return f"{where} repeated to {len(values)} values"
        values.append(rng.choice(pool))
        return f"{where} += {values[-1]!r}"
    if a.type == AttributeProto.TENSOR:
        return f"{where} {_tensor(a.t, rng)}"
    if a.type == AttributeProto.GRAPH:
        choice = rng.randrange(4)
        if choice == 0:
            del a.g.output[:]
            return f"{where} outputs dropped"
        if choice == 1:
            del a.g.node[:]
            return f"{where} nodes dropped"
        if choice == 2:
            a.g.output.extend(list(a.g.output))
            return f"{where} outputs duplicated"
        others = [b for b in node.attribute if b.type == AttributeProto.GRAPH and b is not a]
        if others:
            a.g.CopyFrom(rng.choice(others).g)
            return f"{where} replaced by a sibling subgraph"
        a.g.input.add().CopyFrom(helper.make_tensor_value_info("extra_in", TensorProto.FLOAT, [2]))
        return f"{where} input added"
    node.attribute.remove(a)
    return f"{where} dropped"


def dims(model, rng, ctx) -> str | None:
    infos = _value_infos(model)
    if not infos:
        return None
    v = rng.choice(infos)
    shape = v.type.tensor_type.shape
    choice = rng.randrange(5)
    if choice == 0 and len(shape.dim):
        i = rng.randrange(len(shape.dim))
        shape.dim[i].dim_value = rng.choice(DIMS)
        return f"dims of '{v.name}' [{i}]={shape.dim[i].dim_value}"
    if choice == 1 and len(shape.dim):
        del shape.dim[rng.randrange(len(shape.dim))]
        return f"dims of '{v.name}': one removed"
    if choice == 2:
        shape.dim.add().dim_value = rng.choice(DIMS)
        return f"dims of '{v.name}' += {shape.dim[-1].dim_value}"
    if choice == 3 and len(shape.dim):
        shape.dim[rng.randrange(len(shape.dim))].dim_param = rng.choice(["", "N", "?"])
        return f"dims of '{v.name}': one made symbolic"
    v.type.tensor_type.ClearField("shape")
    return f"shape of '{v.name}' cleared"


def initializer_dims(model, rng, ctx) -> str | None:
    tensors = _tensors(model)
    if not tensors:
        return None
    t = rng.choice(tensors)
    return f"tensor '{t.name}' {_tensor(t, rng)}"


def elem_type(model, rng, ctx) -> str | None:
    infos, tensors = _value_infos(model), _tensors(model)
    casts = [a for _, n in _nodes(model) for a in n.attribute
             if a.name in ("to", "dtype", "output_dtype") and a.type == AttributeProto.INT]
    pool = [("info", v) for v in infos] + [("tensor", t) for t in tensors] + [("attr", a) for a in casts]
    if not pool:
        return None
    kind, item = rng.choice(pool)
    new = rng.choice(ELEM_TYPES)
    if kind == "info":
        item.type.tensor_type.elem_type = new
        return f"elem_type of '{item.name}'={new}"
    if kind == "tensor":
        item.data_type = new
        return f"data_type of tensor '{item.name}'={new}"
    item.i = new
    return f"attribute {item.name}={new}"


def nodes(model, rng, ctx) -> str | None:
    g = rng.choice([g for g in graphs(model.graph) if g.node] or [model.graph])
    if not g.node:
        return None
    i = rng.randrange(len(g.node))
    node = g.node[i]
    choice = rng.randrange(7)
    if choice == 0:
        del g.node[i]
        return f"node {node.op_type} dropped"
    if choice == 1:
        g.node.insert(i, node)
        return f"node {node.op_type} duplicated"
    if choice == 2 and len(g.node) > 1:
        order = list(g.node)
        rng.shuffle(order)
        del g.node[:]
        g.node.extend(order)
        return "nodes shuffled"
    if choice == 3 and node.input:
        del node.input[rng.randrange(len(node.input))]
        return f"node {node.op_type}: an input dropped"
    if choice == 4:
        node.input.append(rng.choice(_names(g) + [""]))
        return f"node {node.op_type}: input '{node.input[-1]}' added"
    if choice == 5 and node.output:
        del node.output[rng.randrange(len(node.output))]
        return f"node {node.op_type}: an output dropped"
    node.output.append(rng.choice(["", "extra_out", *node.output]))
    return f"node {node.op_type}: output '{node.output[-1]}' added"


def graph_io(model, rng, ctx) -> str | None:
    g = model.graph
    choice = rng.randrange(5)
    if choice == 0 and g.input:
        name = g.input[rng.randrange(len(g.input))].name
        g.input.remove(next(v for v in g.input if v.name == name))
        return f"graph input '{name}' dropped"
    if choice == 1 and g.input:
        g.input.append(rng.choice(g.input))
        return f"graph input '{g.input[-1].name}' duplicated"
    if choice == 2 and g.output:
        name = g.output[rng.randrange(len(g.output))].name
        g.output.remove(next(v for v in g.output if v.name == name))
        return f"graph output '{name}' dropped"
    if choice == 3 and g.output:
        g.output.append(rng.choice(g.output))
        return f"graph output '{g.output[-1].name}' duplicated"
    inner = [o for n in g.node for o in n.output if o]
    if not inner:
        return None
    name = rng.choice(inner)
    g.output.add().CopyFrom(ValueInfoProto(name=name) if rng.random() < 0.5 else
                            helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return f"value '{name}' made a graph output"


def rename(model, rng, ctx) -> str | None:
    g = rng.choice([g for g in graphs(model.graph) if g.node] or [model.graph])
    if not g.node:
        return None
    i = rng.randrange(len(g.node))
    node = g.node[i]
    choice = rng.randrange(4)
    if choice == 0 and node.input:
        j = rng.randrange(len(node.input))
        node.input[j] = "dangling_" + str(rng.randrange(100))
        return f"node {node.op_type}: input {j} renamed to a dangling name"
    if choice == 1 and node.output:
        j = rng.randrange(len(node.output))
        node.output[j] = "dangling_" + str(rng.randrange(100))
        return f"node {node.op_type}: output {j} renamed to a dangling name"
    if choice == 2 and node.input:
        later = [o for n in g.node[i:] for o in n.output if o]
        if later:
            j = rng.randrange(len(node.input))
            node.input[j] = rng.choice(later)
            return f"node {node.op_type}: input {j} reads a later value (cycle)"
    if g.output:
        g.output[rng.randrange(len(g.output))].name = "dangling_out"
        return "a graph output renamed to a dangling name"
    return None


def op_type(model, rng, ctx) -> str | None:
    candidates = _nodes(model)
    if not candidates:
        return None
    _, node = rng.choice(candidates)
    old = node.op_type
    node.op_type = rng.choice(ctx["op_types"])
    text = f"op_type {old} -> {node.op_type}"
    if rng.random() < 0.2:
        node.domain = rng.choice(DOMAINS)
        text += f" (domain '{node.domain}')"
    return text


def opset(model, rng, ctx) -> str | None:
    choice = rng.randrange(5)
    if choice == 0 and model.opset_import:
        op = rng.choice(model.opset_import)
        op.version = rng.choice(OPSET_VERSIONS)
        return f"opset '{op.domain}' version={op.version}"
    if choice == 1:
        del model.opset_import[:]
        return "opset imports dropped"
    if choice == 2:
        model.opset_import.add(domain=rng.choice(DOMAINS), version=rng.choice(OPSET_VERSIONS))
        return f"opset import '{model.opset_import[-1].domain}' {model.opset_import[-1].version} added"
    if choice == 3:
        model.ir_version = rng.choice([0, 1, 2, 3, 4, 7, 10, 11, 12, 13, 100, -1, 2**40])
        return f"ir_version={model.ir_version}"
    for _, node in _nodes(model):
        node.domain = rng.choice(DOMAINS)
        return f"node {node.op_type} domain='{node.domain}'"
    return None


def freeze_input(model, rng, ctx) -> str | None:
    """A graph input given by the test data becomes an initializer (a valid edit), so that the
    tensor mutations and constant folding reach it."""
    feeds = ctx["feeds"]
    names = [v.name for v in model.graph.input if isinstance(feeds.get(v.name), np.ndarray)
             and feeds[v.name].dtype != object and feeds[v.name].size < 1 << 16]
    if not names:
        return None
    name = rng.choice(names)
    try:
        model.graph.initializer.append(numpy_helper.from_array(feeds[name], name))
    except (TypeError, ValueError, KeyError):
        return None
    model.graph.input.remove(next(v for v in model.graph.input if v.name == name))
    return f"input '{name}' frozen into an initializer"


def extreme_values(array: np.ndarray, rng: random.Random) -> np.ndarray:
    """`array` with one to three elements set to values at or past the edges of what a kernel
    expects: indices out of range, negative sizes, NaN, infinity."""
    out = array.copy()
    flat = out.reshape(-1)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(flat.size)
        if out.dtype.kind in "iu":
            info = np.iinfo(out.dtype)
            flat[i] = rng.choice([info.min, info.max, 0, min(info.max, 1000), max(info.min, -1),
                                  max(info.min, -1000), min(info.max, 2**31 - 1)])
        elif out.dtype.kind == "f":
            with np.errstate(over="ignore"):
                flat[i] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30])
        elif out.dtype.kind == "b":
            flat[i] = not flat[i]
    return out


def values(model, rng, ctx) -> str | None:
    """One tensor of the model or of the test data gets extreme element values: an initializer,
    a Constant's value, or a test input frozen into an initializer (indices, shapes, axes, pads
    and sizes are often such inputs)."""
    feeds = ctx["feeds"]
    inputs = [v.name for v in model.graph.input if isinstance(feeds.get(v.name), np.ndarray)
              and feeds[v.name].dtype.kind in "iufb" and 0 < feeds[v.name].size < 1 << 16]
    tensors = [t for t in _tensors(model) if t.data_type in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13)]
    pool = [("input", name) for name in inputs] + [("tensor", t) for t in tensors]
    if not pool:
        return None
    kind, item = rng.choice(pool)
    if kind == "input":
        array = extreme_values(feeds[item], rng)
        model.graph.initializer.append(numpy_helper.from_array(array, item))
        model.graph.input.remove(next(v for v in model.graph.input if v.name == item))
        return f"input '{item}' frozen with extreme values"
    array = numpy_helper.to_array(item)
    if array.size == 0:
        return None
    item.CopyFrom(numpy_helper.from_array(extreme_values(array, rng), item.name))
    return f"tensor '{item.name}' given extreme values"


def _branch(graph: GraphProto, prefix: str) -> GraphProto:
    """A subgraph computing `graph`'s outputs from the outer scope: node outputs renamed with
    `prefix` (inputs and initializers stay outer names), one Identity per output."""
    produced = {o for n in graph.node for o in n.output if o}
    renamed = {name: prefix + name for name in produced}
    body = GraphProto(name=prefix + "body")
    for n in graph.node:
        copy = body.node.add()
        copy.CopyFrom(n)
        copy.ClearField("name")
        for field in (copy.input, copy.output):
            for i, name in enumerate(field):
                field[i] = renamed.get(name, name)
    for v in graph.value_info:
        if v.name in renamed:
            body.value_info.add().CopyFrom(v)
            body.value_info[-1].name = renamed[v.name]
    for v in graph.output:
        out = prefix + "out_" + v.name
        body.node.add().CopyFrom(helper.make_node("Identity", [renamed.get(v.name, v.name)], [out]))
        body.output.add().CopyFrom(v)
        body.output[-1].name = out
    return body


def nest(model, rng, ctx) -> str | None:
    # 30 levels (3 messages each) stay within protobuf's default nesting limit of 100.
    depth = 30 if rng.random() < 0.03 else rng.randint(1, 3)
    kinds = []
    # Every else branch is the original graph, so the model grows linearly with the depth.
    original = GraphProto()
    original.CopyFrom(model.graph)
    for level in range(depth):
        g = model.graph
        tensors_only = all(v.type.HasField("tensor_type") for v in g.output)
        kind = "Loop" if tensors_only and rng.random() < 0.5 else "If"
        kinds.append(kind)
        if kind == "If":
            cond = helper.make_node("Constant", [], [f"nest{level}_cond"],
                                    value=helper.make_tensor("c", TensorProto.BOOL, [], [rng.random() < 0.5]))
            outer = helper.make_node("If", [f"nest{level}_cond"], [v.name for v in g.output],
                                     then_branch=_branch(g, f"then{level}_"),
                                     else_branch=_branch(original, f"else{level}_"))
            new_nodes = [cond, outer]
        else:
            trips = rng.choice([0, 1, 1, 2, 3])
            count = helper.make_node("Constant", [], [f"nest{level}_trips"],
                                     value=helper.make_tensor("m", TensorProto.INT64, [], [trips]))
            cond = helper.make_node("Constant", [], [f"nest{level}_cond"],
                                    value=helper.make_tensor("c", TensorProto.BOOL, [], [True]))
            body = _branch(g, f"loop{level}_")
            body.input.extend([helper.make_tensor_value_info(f"loop{level}_i", TensorProto.INT64, []),
                               helper.make_tensor_value_info(f"loop{level}_c", TensorProto.BOOL, [])])
            body.node.add().CopyFrom(helper.make_node("Identity", [f"loop{level}_c"], [f"loop{level}_c_out"]))
            body.output.insert(0, helper.make_tensor_value_info(f"loop{level}_c_out", TensorProto.BOOL, []))
            outer = helper.make_node("Loop", [f"nest{level}_trips", f"nest{level}_cond"],
                                     [v.name for v in g.output], body=body)
            new_nodes = [count, cond, outer]
            for v in g.output:  # scan outputs gain a leading axis
                v.type.tensor_type.ClearField("shape")
        del g.node[:]
        del g.value_info[:]
        g.node.extend(new_nodes)
    return f"graph nested in {'/'.join(kinds)}"


PROTOBUF_MUTATIONS = {"attribute": attribute, "dims": dims, "tensor": initializer_dims, "elem_type": elem_type,
                      "nodes": nodes, "graph_io": graph_io, "rename": rename, "op_type": op_type,
                      "opset": opset, "freeze_input": freeze_input, "values": values, "nest": nest}


def byte_mutation(blob: bytes, rng: random.Random) -> tuple[bytes, str]:
    data = bytearray(blob)
    if not data:
        return bytes([rng.randrange(256)]), "one random byte"
    choice = rng.randrange(6)
    if choice == 0:
        flips = rng.randint(1, 8)
        for _ in range(flips):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data), f"{flips} bit flip(s)"
    if choice == 1:
        count = rng.randint(1, 8)
        for _ in range(count):
            data[rng.randrange(len(data))] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        return bytes(data), f"{count} byte(s) overwritten"
    if choice == 2:
        cut = rng.randrange(len(data))
        return bytes(data[:cut]), f"truncated to {cut} of {len(data)} bytes"
    if choice == 3:
        at, size = rng.randrange(len(data) + 1), rng.choice([1, 2, 5, 10, 100])
        data[at:at] = bytes(rng.randrange(256) for _ in range(size))
        return bytes(data), f"{size} random byte(s) inserted at {at}"
    if choice == 4:
        at = rng.randrange(len(data))
        size = rng.randint(1, max(1, min(64, len(data) - at)))
        del data[at:at + size]
        return bytes(data), f"{size} byte(s) deleted at {at}"
    at = rng.randrange(len(data))
    data[at:at] = b"\xff" * rng.randint(1, 10)  # a run of continuation bytes: a huge varint
    return bytes(data), f"varint run inserted at {at}"


def mutate(model: ModelProto, rng: random.Random, ctx: dict) -> tuple[bytes, list[str]]:
    """Applies 1-3 protobuf mutations (mostly one: each more is likelier to stop the model at
    its checks, before any kernel runs) and, for a tenth of the mutants, a byte mutation of the
    result; another eighth get only the byte mutation. Returns the serialized mutant and what
    was done, one string per mutation."""
    done: list[str] = []
    if rng.random() >= 0.12:
        names = sorted(PROTOBUF_MUTATIONS)
        for _ in range(rng.choice([1, 1, 1, 1, 2, 2, 3])):
            for _attempt in range(10):
                name = rng.choice(names)
                try:
                    text = PROTOBUF_MUTATIONS[name](model, rng, ctx)
                except Exception as e:  # noqa: BLE001 - a mutation protobuf refuses to build
                    text = f"left unfinished ({type(e).__name__})"
                if text is not None:
                    done.append(f"{name}: {text}")
                    break
    blob = model.SerializeToString()
    if not done or rng.random() < 0.1:
        blob, text = byte_mutation(blob, rng)
        done.append(f"bytes: {text}")
    return blob, done
