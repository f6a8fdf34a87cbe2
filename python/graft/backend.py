"""graft as an ONNX backend (onnx.backend.base.Backend), so onnx.backend.test can run it."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep

from .session import InferenceSession, get_available_providers


class GraftBackendRep(BackendRep):
    """A prepared model: runs inputs given by position or by name."""

    def __init__(self, session: InferenceSession) -> None:
        self._session = session

    def run(self, inputs: Any, **kwargs: Any) -> tuple:
        names = [i.name for i in self._session.get_inputs()]
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        elif isinstance(inputs, (list, tuple)):
            if len(inputs) > len(names):
                raise ValueError(f"model takes {len(names)} inputs, got {len(inputs)}")
            feeds = dict(zip(names, inputs))
        else:
            feeds = {names[0]: inputs}
        return tuple(self._session.run(None, feeds))


class GraftBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: onnx.ModelProto | str | bytes, device: str = "CPU", **kwargs: Any) -> GraftBackendRep:
        if isinstance(model, onnx.ModelProto):
            data = model.SerializeToString()
        else:
            data = model
        return GraftBackendRep(InferenceSession(data, providers=get_available_providers()))

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Sequence[np.ndarray], device: str = "CPU",
                 outputs_info: Any = None, **kwargs: Any) -> tuple:
        """Runs one node by wrapping it in a model; output types come from ONNX inference."""
        domain = node.domain or ""
        opset = kwargs.get("opset_version") or onnx.defs.onnx_opset_version()
        arrays = [np.asarray(x) for x in inputs]
        present = [(name, arr) for name, arr in zip(node.input, arrays) if name]
        value_infos = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape)
                       for name, arr in present]
        schema = onnx.defs.get_schema(node.op_type, opset, domain)
        out_types = onnx.shape_inference.infer_node_outputs(
            schema, node, {vi.name: vi.type for vi in value_infos})
        outputs = [helper.make_value_info(name, out_types[name]) for name in node.output if name]
        graph = helper.make_graph([node], "run_node", value_infos, outputs)
        opsets = [helper.make_opsetid(domain, opset)]
        if domain:
            opsets.append(helper.make_opsetid("", onnx.defs.onnx_opset_version()))
        model = helper.make_model(graph, opset_imports=opsets)
        return cls.prepare(model, device).run({name: arr for name, arr in present})

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper() == "CPU"


prepare = GraftBackend.prepare
run_model = GraftBackend.run_model
run_node = GraftBackend.run_node
supports_device = GraftBackend.supports_device
is_compatible = GraftBackend.is_compatible
