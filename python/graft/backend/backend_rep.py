"""A model prepared by graft.backend: runs inputs given by position, by name or as one value."""

from __future__ import annotations

from typing import Any

from onnx.backend.base import BackendRep

from ..session import InferenceSession
from ..session_options import RunOptions

# The RunOptions attributes a backend caller may set. `terminate` is refused: it would stop the
# very run asked for.
ALLOWED_RUN_OPTIONS = frozenset({"log_severity_level", "log_verbosity_level", "logid",
                                 "only_execute_path_to_fetches"})


def options_from_kwargs(options: Any, allowed: frozenset, kwargs: dict[str, Any]) -> Any:
    """Sets the allowed attributes of `options` from kwargs; an attribute `options` has but the
    backend does not allow raises RuntimeError; other keywords are ignored (they may be meant for
    the other kind of options)."""
    for key, value in kwargs.items():
        if key in allowed:
            setattr(options, key, value)
        elif hasattr(options, key):
            raise RuntimeError(f"{type(options).__name__} attribute '{key}' is not permitted through the backend "
                               f"API (permitted: {', '.join(sorted(allowed))})")
    return options


class GraftBackendRep(BackendRep):
    def __init__(self, session: InferenceSession) -> None:
        self._session = session

    @property
    def session(self) -> InferenceSession:
        return self._session

    def run(self, inputs: Any, **kwargs: Any) -> list:
        """Inputs: a list or tuple (one per model input, in order), a dict by name, or one value
        for a model with one input. kwargs: RunOptions attributes (ALLOWED_RUN_OPTIONS)."""
        options = options_from_kwargs(RunOptions(), ALLOWED_RUN_OPTIONS, kwargs)
        names = [i.name for i in self._session.get_inputs()]
        if isinstance(inputs, dict) and not all(isinstance(k, str) and k in names for k in inputs):
            if len(names) != 1:
                raise RuntimeError(f"the model takes {len(names)} inputs; name them in a dict")
            feeds = {names[0]: inputs}  # a map value for a model's one input
        elif isinstance(inputs, dict):
            feeds = dict(inputs)
        elif isinstance(inputs, (list, tuple)):
            if len(inputs) > len(names):
                raise ValueError(f"the model takes {len(names)} inputs, got {len(inputs)}")
            feeds = dict(zip(names, inputs))
        else:
            if len(names) != 1:
                raise RuntimeError(f"the model takes {len(names)} inputs, got one value")
            feeds = {names[0]: inputs}
        return self._session.run(None, feeds, options)


OnnxRuntimeBackendRep = GraftBackendRep
