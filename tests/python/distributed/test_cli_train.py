"""`graft train`, the command line's training loop: in one process it trains the MLP of dp_common
step for step like torch.optim.SGD on the same batches; under `mpirun -np 2` it trains
data-parallel and ends with the single process's weights; only rank 0 prints and writes; a
resumed run ends bit for bit where an uninterrupted one does; bad input is named."""

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from graft.training import read_dataset, write_dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dp_common import mlp, mpirun, run_checked  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
GRAFT = os.environ.get("GRAFT_CLI", os.path.join(ROOT, "build", "graft"))
SAMPLES, BATCH, EPOCHS, LR, MOMENTUM = 96, 16, 2, 0.05, 0.9
PARAMS = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_train")
    onnx.save(mlp(seed=0), tmp / "mlp.onnx")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((SAMPLES, 6)).astype(np.float32)
    write_dataset(tmp / "data.bin", {"x": x, "target": np.tanh(x[:, :3] * 2).astype(np.float32)})
    return tmp


def train(files, out, *extra, launcher=()):
    cmd = [*launcher, GRAFT, "train", str(files / "mlp.onnx"), "--loss", "loss", "--data", str(files / "data.bin"),
           "--batch", str(BATCH), "--optimizer", "sgd", "--lr", str(LR), "--momentum", str(MOMENTUM),
           "--threads", "1", "-o", str(out), *extra]
    return run_checked(cmd)


def weights(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer if t.name in PARAMS}


def test_one_process_matches_torch_sgd(files, tmp_path):
    proc = train(files, tmp_path / "out.onnx", "--epochs", str(EPOCHS), "--shuffle", "off")
    print(proc.stdout)
    assert proc.stdout.count("mean loss") == EPOCHS
    init = {t.name: numpy_helper.to_array(t) for t in mlp(seed=0).graph.initializer}
    fc1, fc2 = torch.nn.Linear(6, 16), torch.nn.Linear(16, 3)
    with torch.no_grad():
        for layer, name in ((fc1, "fc1"), (fc2, "fc2")):
            layer.weight.copy_(torch.tensor(init[f"{name}.weight"]))
            layer.bias.copy_(torch.tensor(init[f"{name}.bias"]))
    opt = torch.optim.SGD([*fc1.parameters(), *fc2.parameters()], lr=LR, momentum=MOMENTUM)
    data = read_dataset(files / "data.bin")
    for _ in range(EPOCHS):
        for b in range(SAMPLES // BATCH):
            x = torch.from_numpy(data["x"][b * BATCH:(b + 1) * BATCH])
            t = torch.from_numpy(data["target"][b * BATCH:(b + 1) * BATCH])
            opt.zero_grad()
            ((fc2(torch.tanh(fc1(x))) - t) ** 2).mean().backward()
            opt.step()
    got = weights(tmp_path / "out.onnx")
    expected = {"fc1.weight": fc1.weight, "fc1.bias": fc1.bias, "fc2.weight": fc2.weight, "fc2.bias": fc2.bias}
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("transport", ["self,vader", "tcp,self"])
def test_two_ranks_match_one_process(files, tmp_path, transport):
    common = ("--epochs", str(EPOCHS), "--seed", "3")
    train(files, tmp_path / "one.onnx", *common)
    proc = train(files, tmp_path / "two.onnx", *common, "--checkpoint", str(tmp_path / "two.ckpt"),
                 launcher=mpirun(2, transport))
    print(proc.stdout)
    assert "(2 ranks, 8 samples each)" in proc.stdout
    # Rank 0 alone reports and writes.
    assert proc.stdout.count(f"epoch {EPOCHS}/{EPOCHS}") == 1 and proc.stdout.count("wrote ") == 1
    assert os.path.exists(tmp_path / "two.ckpt")
    one, two = weights(tmp_path / "one.onnx"), weights(tmp_path / "two.onnx")
    for name in PARAMS:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_resume_is_bitwise_identical(files, tmp_path):
    train(files, tmp_path / "full.onnx", "--epochs", "3")
    train(files, tmp_path / "first.onnx", "--epochs", "1", "--checkpoint", str(tmp_path / "ckpt"))
    proc = train(files, tmp_path / "resumed.onnx", "--epochs", "3", "--resume", str(tmp_path / "ckpt"))
    assert f"resuming at step {SAMPLES // BATCH}" in proc.stdout and "epoch 1/3" not in proc.stdout
    full, resumed = weights(tmp_path / "full.onnx"), weights(tmp_path / "resumed.onnx")
    for name in PARAMS:
        np.testing.assert_array_equal(resumed[name], full[name], err_msg=name)


def test_bad_input_is_named(files, tmp_path):
    write_dataset(tmp_path / "no_target.bin", {"x": np.zeros((32, 6), np.float32)})
    proc = subprocess.run([GRAFT, "train", str(files / "mlp.onnx"), "--loss", "loss", "--data",
                           str(tmp_path / "no_target.bin")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "model input 'target'" in proc.stderr, proc.stderr
    proc = subprocess.run([GRAFT, "train", str(files / "mlp.onnx"), "--loss", "loss", "--data",
                           str(files / "data.bin"), "--batch", "1000"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "fewer than one batch of 1000" in proc.stderr, proc.stderr
    proc = subprocess.run([GRAFT, "train", str(files / "mlp.onnx"), "--loss", "loss", "--data",
                           str(files / "data.bin"), "--optimizer", "sgdd"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "unknown optimizer 'sgdd'" in proc.stderr, proc.stderr
    proc = subprocess.run([GRAFT, "train", str(files / "mlp.onnx"), "--loss", "loss"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "--data is required" in proc.stderr and "usage" in proc.stderr
    (tmp_path / "truncated.bin").write_bytes((files / "data.bin").read_bytes()[:100])
    proc = subprocess.run([GRAFT, "train", str(files / "mlp.onnx"), "--loss", "loss", "--data",
                           str(tmp_path / "truncated.bin")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "truncated" in proc.stderr, proc.stderr
