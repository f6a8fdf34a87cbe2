"""Inference with the CUDA provider: models exported from PyTorch match the CPU provider, provider
options choose the device, IOBinding leaves outputs on the device, tensors cross to and from torch
through DLPack without copies, and an op the CUDA provider lacks runs on the CPU."""

import gc

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

import graft
from torch_models import ResNet18, export, randomize_batchnorm, transformer_encoder

# TF32 off: float32 products as exact as the CPU provider's, for the 1e-4 comparison.
CUDA = [("CUDAExecutionProvider", {"device_id": 0, "use_tf32": 0}), "CPUExecutionProvider"]


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def _cnn() -> nn.Module:
    model = ResNet18(num_classes=10)
    randomize_batchnorm(model, seed=1)
    return model


# name -> (model maker, input shape); small sizes keep the whole GPU run short.
MODELS = {"cnn": (_cnn, (2, 3, 64, 64)), "encoder": (transformer_encoder, (2, 16, 64)), "mlp": (_mlp, (8, 32))}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exports each model once per dtype on first use: (path, input) by (name, dtype)."""
    folder = tmp_path_factory.mktemp("models")
    cache = {}

    def get(name: str, dtype: torch.dtype = torch.float32) -> tuple[str, np.ndarray]:
        if (name, dtype) not in cache:
            make, shape = MODELS[name]
            torch.manual_seed(0)
            model = make().to(dtype)
            x = torch.randn(*shape).to(dtype)
            path = str(folder / f"{name}_{str(dtype).split('.')[-1]}.onnx")
            export(model, (x,), path)
            cache[name, dtype] = (path, x.numpy())
        return cache[name, dtype]

    return get


def _cpu(path: str, x: np.ndarray) -> np.ndarray:
    return graft.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def _relative(got: np.ndarray, want: np.ndarray) -> float:
    got, want = got.astype(np.float32), want.astype(np.float32)
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-4), (torch.float16, 1e-2)], ids=["fp32", "fp16"])
@pytest.mark.parametrize("name", list(MODELS))
def test_model_matches_cpu_provider(exported, name, dtype, tolerance):
    path, x = exported(name, dtype)
    sess = graft.InferenceSession(path, providers=CUDA)
    assert sess.get_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    got = sess.run(None, {"input": x})[0]
    want = _cpu(path, x)
    assert got.dtype == want.dtype and got.shape == want.shape
    rel = _relative(got, want)
    print(f"{name} {dtype}: max |cuda - cpu| / max |cpu| = {rel:.3g}")
    assert rel < tolerance


def test_provider_options_choose_the_device(exported):
    path, x = exported("mlp")
    last = torch.cuda.device_count() - 1
    sess = graft.InferenceSession(path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
                                  provider_options=[{"device_id": last, "use_tf32": 0}, {}])
    assert sess.get_provider_options() == {"CUDAExecutionProvider": {"device_id": str(last), "use_tf32": "0"},
                                           "CPUExecutionProvider": {}}
    binding = sess.io_binding()
    binding.bind_cpu_input("input", x)
    binding.bind_output("output", "cuda", last)
    sess.run_with_iobinding(binding)
    out = binding.get_outputs()[0]
    assert (out.device_name(), out.device_id()) == ("cuda", last)
    assert _relative(out.numpy(), _cpu(path, x)) < 1e-4
    with pytest.raises(ValueError, match="device_id"):
        graft.InferenceSession(path, providers=[("CUDAExecutionProvider", {"device_id": last + 1})])


def test_iobinding_leaves_outputs_on_the_device(exported):
    path, x = exported("mlp")
    want = _cpu(path, x)
    sess = graft.InferenceSession(path, providers=CUDA)
    binding = sess.io_binding()
    x_gpu = graft.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    assert x_gpu.device_name() == "cuda"
    binding.bind_ortvalue_input("input", x_gpu)
    binding.bind_output("output", "cuda", 0)
    sess.run_with_iobinding(binding)
    binding.synchronize_outputs()
    out = binding.get_outputs()[0]
    assert out.device_name() == "cuda" and out.shape() == list(want.shape)
    assert _relative(out.numpy(), want) < 1e-4
    assert _relative(binding.copy_outputs_to_cpu()[0], want) < 1e-4

    # By address: the input read from a torch tensor, the output copied into another.
    xt = torch.tensor(x, device="cuda")
    yt = torch.full(want.shape, float("nan"), device="cuda")
    binding = sess.io_binding()
    binding.bind_input("input", "cuda", 0, np.float32, list(xt.shape), xt.data_ptr())
    binding.bind_output("output", "cuda", 0, np.float32, list(yt.shape), yt.data_ptr())
    sess.run_with_iobinding(binding)
    assert _relative(yt.cpu().numpy(), want) < 1e-4
    # A CPU-bound output comes back to the host.
    binding.clear_binding_outputs()
    binding.bind_output("output", "cpu")
    sess.run_with_iobinding(binding)
    assert binding.get_outputs()[0].device_name() == "cpu"


def test_dlpack_round_trip_with_torch_cuda_tensors(exported):
    path, x = exported("mlp")
    sess = graft.InferenceSession(path, providers=CUDA)
    xt = torch.tensor(x, device="cuda") * 1.0  # made by a torch kernel, still running perhaps
    v = graft.OrtValue.from_dlpack(xt)
    assert v.device_name() == "cuda" and v.data_ptr() == xt.data_ptr()  # no copy
    out = sess.run_with_ort_values(None, {"input": v})[0]
    assert out.device_name() == "cuda"
    yt = torch.from_dlpack(out)
    assert yt.device.type == "cuda" and yt.data_ptr() == out.data_ptr()  # no copy
    del out, v
    gc.collect()  # torch's tensor holds graft's buffer now
    assert _relative(yt.cpu().numpy(), _cpu(path, x)) < 1e-4

    # On a side stream: graft's run waits for torch's work there and torch's for graft's.
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        doubled = torch.tensor(x, device="cuda").mul_(2)
        out = torch.from_dlpack(sess.run_with_ort_values(None, {"input": graft.OrtValue.from_dlpack(doubled)})[0])
        result = out * 1.0
    torch.cuda.synchronize()
    assert _relative(result.cpu().numpy(), _cpu(path, x * 2)) < 1e-4

    # A device OrtValue made from NumPy reaches torch as it is.
    v = graft.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    assert torch.equal(torch.from_dlpack(v).cpu(), torch.tensor(x))


def test_an_op_the_cuda_provider_lacks_runs_on_the_cpu(tmp_path):
    # Det has no CUDA kernel: the Muls run on the device, Det on the host between copies.
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "x"], ["a"]), helper.make_node("Det", ["a"], ["d"]),
         helper.make_node("Mul", ["d", "d"], ["y"])],
        "fallback", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = np.random.default_rng(0).standard_normal((4, 3, 3)).astype(np.float32)
    options = graft.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "placed.onnx")
    sess = graft.InferenceSession(model.SerializeToString(), options, providers=CUDA)
    got = sess.run(None, {"x": x})[0]
    want = graft.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    placed = onnx.load(str(tmp_path / "placed.onnx")).graph
    producers = {o: n for n in placed.node for o in n.output}
    det = next(n for n in placed.node if n.op_type == "Det")
    assert producers[det.input[0]].op_type == "MemcpyToHost"  # Mul made it on the device
    assert any(n.op_type == "MemcpyFromHost" for n in placed.node)
