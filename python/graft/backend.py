"""graft as an ONNX backend (onnx.backend.base.Backend), so onnx.backend.test can run it."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
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
        raise NotImplementedError("graft runs whole models; build a model around the node")

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper() == "CPU"


prepare = GraftBackend.prepare
run_model = GraftBackend.run_model
supports_device = GraftBackend.supports_device
is_compatible = GraftBackend.is_compatible
