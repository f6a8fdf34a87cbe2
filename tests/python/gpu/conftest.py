"""The GPU tests (scripts/gpu_check.sh runs them on a machine with a GPU). Where graft has no
CUDAExecutionProvider or torch no CUDA device, every test here is skipped with the reason."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.dirname(HERE))  # torch_models
sys.path.insert(0, os.path.join(ROOT, "examples"))  # train_digits


def _skip_reason() -> str | None:
    import graft
    import torch

    available = graft.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        return f"graft has no CUDAExecutionProvider here (available: {', '.join(available)})"
    if not torch.cuda.is_available():
        return "torch.cuda is not available"
    return None


def pytest_report_header(config):
    reason = _skip_reason()
    return f"GPU tests: {'skipped: ' + reason if reason else 'running on ' + _device_name()}"


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def pytest_collection_modifyitems(config, items):
    reason = _skip_reason()
    if reason is None:
        return
    for item in items:
        if str(item.fspath).startswith(HERE):
            item.add_marker(pytest.mark.skip(reason=reason))
