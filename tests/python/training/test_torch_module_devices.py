"""graft.torch.Module picks the device of its tensors: one device, CPU or CUDA, named when it
cannot run (tests/python/gpu/test_cuda_training.py runs it on a GPU)."""

import pytest
import torch

import graft
from graft.torch import Module


def test_tensors_on_several_devices_are_named():
    net = Module(torch.nn.Linear(3, 2), (torch.randn(4, 3),))
    with pytest.raises(ValueError, match="several devices \\(argument 0 on meta, parameter 'weight' on cpu\\)"):
        net(torch.randn(4, 3, device="meta"))


def test_a_device_graft_does_not_run_is_named():
    net = Module(torch.nn.Linear(3, 2), (torch.randn(4, 3),))
    net.module.to("meta")
    with pytest.raises(ValueError, match="argument 0 is on meta; graft.torch runs CPU and CUDA tensors"):
        net(torch.randn(4, 3, device="meta"))


@pytest.mark.skipif("CUDAExecutionProvider" in graft.get_available_providers(), reason="a GPU is present")
def test_cuda_tensors_without_the_cuda_provider_are_refused():
    if not torch.cuda.is_available():
        pytest.skip("torch.cuda is not available: no CUDA tensor can be made here")
    with pytest.raises(RuntimeError, match="no CUDAExecutionProvider"):
        Module(torch.nn.Linear(3, 2).cuda(), (torch.randn(4, 3, device="cuda"),))
