"""graft as an ONNX backend (onnx.backend.base.Backend): prepare a model, run it, run one node."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend

from ..info import get_device
from ..session import InferenceSession, get_available_providers
from ..session_options import SessionOptions
from .backend_rep import GraftBackendRep, options_from_kwargs

# The SessionOptions attributes a backend caller may set. Those that write files
# (optimized_model_filepath, enable_profiling, profile_file_prefix) are refused: the backend is
# handed models and options by test harnesses, not by the user who owns the file system.
ALLOWED_SESSION_OPTIONS = frozenset({
    "enable_cpu_mem_arena", "enable_mem_pattern", "enable_mem_reuse", "execution_mode", "execution_order",
    "graph_optimization_level", "inter_op_num_threads", "intra_op_num_threads", "log_severity_level",
    "log_verbosity_level", "logid", "use_deterministic_compute", "use_per_session_threads",
})


class GraftBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str | None = None, **kwargs: Any) -> bool:
        return cls.supports_device(device or get_device())

    @classmethod
    def prepare(cls, model: Any, device: str | None = None, **kwargs: Any) -> GraftBackendRep:
        """A model (ModelProto, serialized bytes, a path, an InferenceSession or a prepared model)
        ready to run. kwargs: SessionOptions attributes (ALLOWED_SESSION_OPTIONS); keywords
        neither option kind knows are ignored."""
        if isinstance(model, GraftBackendRep):
            return model
        if device is not None and not cls.supports_device(device):
            raise RuntimeError(f"graft runs on {get_device()} here, not on '{device}'")
        if isinstance(model, InferenceSession):
            return GraftBackendRep(model)
        if isinstance(model, onnx.ModelProto):
            model = model.SerializeToString()
        options = options_from_kwargs(SessionOptions(), ALLOWED_SESSION_OPTIONS, kwargs)
        return GraftBackendRep(InferenceSession(model, options, providers=get_available_providers()))

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str | None = None, **kwargs: Any) -> list:
        """prepare() then run(); kwargs go to both (each takes the options it knows)."""
        return cls.prepare(model, device, **kwargs).run(inputs, **kwargs)

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
        """"CPU", and "GPU" (or "CUDA") where graft can use a GPU here."""
        name = str(device).upper()
        return name == "CPU" or (name in ("GPU", "CUDA") and get_device() == "GPU")


OnnxRuntimeBackend = GraftBackend
