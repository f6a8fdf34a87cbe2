"""Numeric gradient checks for single-node models: central differences in float64."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import graft
import graft.autodiff


@dataclass
class Case:
    """One node to differentiate. `inputs` maps input names to a shape (random float64 data,
    differentiated) or a fixed array (not differentiated: indices, axes, shapes, masks)."""

    op: str
    inputs: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    opset: int = 18
    num_outputs: int = 1
    # Makes the random data for a differentiable input (e.g. positive values for Log).
    data: Callable[[np.random.Generator, tuple], np.ndarray] | None = None
    rtol: float = 1e-5
    atol: float = 1e-6
    label: str = ""
    # onnxruntime has no float64 kernel for some ops (Erf, Mean, Gelu-20, Celu): the gradient model
    # is then checked numerically only.
    onnxruntime: bool = True
    # The node's own inputs when they differ from `inputs` (an If node reads the other graph
    # inputs from its branches).
    node_inputs: list[str] | None = None


def _seed(case: Case) -> int:
    return zlib.crc32(f"{case.domain}.{case.op}.{case.label}".encode())


def _models(case: Case, rng: np.random.Generator):
    names = list(case.inputs)
    values, diff = {}, []
    for name, spec in case.inputs.items():
        if isinstance(spec, tuple):
            values[name] = case.data(rng, spec) if case.data else rng.standard_normal(spec)
            diff.append(name)
        else:
            values[name] = np.asarray(spec)
    outs = [f"y{i}" for i in range(case.num_outputs)]
    node_names = case.node_inputs if case.node_inputs is not None else names
    node = helper.make_node(case.op, [n if n is not None else "" for n in node_names], outs, domain=case.domain,
                            **case.attrs)
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(values[n].dtype), values[n].shape)
              for n in names]
    opsets = [helper.make_opsetid("", case.opset)]
    if case.domain:
        opsets.append(helper.make_opsetid(case.domain, 1))
    # Forward once to learn the output shapes, then weight each output by fixed random data.
    probe = helper.make_model(helper.make_graph([node], "probe", inputs, [
        helper.make_value_info(o, onnx.TypeProto()) for o in outs]), opset_imports=opsets)
    probe = onnx.shape_inference.infer_shapes(probe)
    ys = graft.InferenceSession(_with_typed_outputs(probe, values).SerializeToString()).run(None, values)
    weights = [numpy_helper.from_array(rng.standard_normal(y.shape), f"w{i}") for i, y in enumerate(ys)
               if y.dtype == np.float64]
    nodes = [node]
    terms = []
    for i, w in enumerate(weights):
        nodes.append(helper.make_node("Mul", [outs[i], w.name], [f"t{i}"]))
        nodes.append(helper.make_node("ReduceSum", [f"t{i}"], [f"s{i}"], keepdims=0))
        terms.append(f"s{i}")
    nodes.append(helper.make_node("Sum", terms, ["loss"]))
    graph = helper.make_graph(nodes, "check", inputs, [helper.make_tensor_value_info("loss", TensorProto.DOUBLE, [])],
                              weights)
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 10
    return model, values, diff


def _with_typed_outputs(model: onnx.ModelProto, values) -> onnx.ModelProto:
    inferred = {v.name: v for v in model.graph.value_info}
    for o in model.graph.output:
        if o.name in inferred:
            o.type.CopyFrom(inferred[o.name].type)
        else:
            o.type.tensor_type.elem_type = TensorProto.DOUBLE
    return model


def check(case: Case, against_onnxruntime: bool = True) -> str:
    """Compares graft's gradient graph with central differences (and onnxruntime's run of the
    same gradient graph). Returns a one-line summary; raises AssertionError on a mismatch."""
    seed = _seed(case)
    rng = np.random.default_rng(seed)
    model, values, diff = _models(case, rng)
    grad_model = graft.autodiff.gradient_model(model, "loss", wrt=diff)
    onnx.checker.check_model(grad_model)
    names = [o.name for o in grad_model.graph.output]
    got = dict(zip(names, graft.InferenceSession(grad_model.SerializeToString()).run(None, values)))
    forward = graft.InferenceSession(model.SerializeToString())
    eps = 1e-6
    worst = 0.0
    for name in diff:
        numeric = np.zeros_like(values[name])
        for idx in np.ndindex(values[name].shape):
            shifted = {}
            for sign in (1, -1):
                v = dict(values)
                v[name] = values[name].copy()
                v[name][idx] += sign * eps
                shifted[sign] = float(forward.run(None, v)[0])
            numeric[idx] = (shifted[1] - shifted[-1]) / (2 * eps)
        analytic = got[f"{name}_grad"]
        assert analytic.shape == numeric.shape, f"{case.op} seed {seed}: {name}_grad shape {analytic.shape} != {numeric.shape}"
        np.testing.assert_allclose(analytic, numeric, rtol=case.rtol, atol=case.atol,
                                   err_msg=f"{case.op} ({case.label}) seed {seed}: d loss / d {name}")
        worst = max(worst, float(np.abs(analytic - numeric).max()) if analytic.size else 0.0)
    if against_onnxruntime and case.onnxruntime:
        import onnxruntime as ort

        theirs = ort.InferenceSession(grad_model.SerializeToString(), providers=["CPUExecutionProvider"])
        for name, value in zip(names, theirs.run(None, values)):
            np.testing.assert_allclose(value, got[name], rtol=1e-6, atol=1e-9,
                                       err_msg=f"{case.op} seed {seed}: onnxruntime disagrees on {name}")
    return f"{case.domain or 'ai.onnx'}.{case.op} [{case.label}] seed {seed}: max |analytic - numeric| = {worst:.2e}"
