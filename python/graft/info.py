"""What graft is and how it reports: version and build information, the process-wide logging
levels, telemetry switches and the seed, with onnxruntime's names."""

from __future__ import annotations

import platform

from . import _C

VERSION = "0.1.0"

# onnxruntime's severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal.
_logging = {"severity": 2, "verbosity": 0}


def get_version_string() -> str:
    return VERSION


def get_build_info() -> str:
    """One line: the version, and the providers and Python this copy was built for."""
    providers = ", ".join(_C.available_providers())
    return f"Build Info: graft {VERSION}, providers: {providers}, Python {platform.python_version()}"


def _severity(level: int) -> int:
    level = int(level)
    if not 0 <= level <= 4:
        raise RuntimeError(f"log severity level must be 0 (verbose) to 4 (fatal), got {level}")
    return level


def set_default_logger_severity(severity: int) -> None:
    _logging["severity"] = _severity(severity)


def set_default_logger_verbosity(verbosity: int) -> None:
    _logging["verbosity"] = int(verbosity)


def enable_telemetry_events() -> None:
    """graft collects and sends nothing; the call exists for code written for onnxruntime."""


def disable_telemetry_events() -> None:
    """graft collects and sends nothing; the call exists for code written for onnxruntime."""


def set_seed(seed: int) -> None:
    """Seeds the generator unseeded random operators (Dropout, RandomNormal...) draw from."""
    _C.seed(int(seed))


def get_device() -> str:
    """"GPU" when this copy of graft can use a GPU here, "CPU" otherwise."""
    return "GPU" if "CUDAExecutionProvider" in _C.available_providers() else "CPU"
