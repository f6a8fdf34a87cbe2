"""Checkpoints round-trip exactly, refuse damaged files, and survive SIGKILL while being written."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import ml_dtypes
import numpy as np
import pytest

import graft
from graft.checkpoint import load_checkpoint, save_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _tensors(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "fc.weight": rng.standard_normal((64, 32)).astype(np.float32),
        "fc.weight.adamw.m": rng.standard_normal((64, 32)).astype(np.float32),
        "counts": rng.integers(-5, 5, (7,)).astype(np.int64),
        "half": rng.standard_normal((3, 3)).astype(np.float16),
        "bf16": rng.standard_normal(5).astype(ml_dtypes.bfloat16),
        "names": np.array(["a", "β", ""], dtype=object),
    }


def test_round_trip_is_exact(tmp_path):
    path = tmp_path / "ckpt.graft"
    tensors = _tensors(0)
    save_checkpoint(path, tensors, step=17, properties={"epoch": "3", "note": "ünïcode"})
    loaded, step, props = load_checkpoint(path)
    assert step == 17 and props == {"epoch": "3", "note": "ünïcode"}
    assert set(loaded) == set(tensors)
    for name, value in tensors.items():
        assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape
        assert loaded[name].tobytes() == value.tobytes() if value.dtype != object else list(loaded[name]) == list(value)


def test_truncated_and_corrupted_files_are_refused(tmp_path):
    path = tmp_path / "ckpt.graft"
    save_checkpoint(path, _tensors(1), step=1)
    data = path.read_bytes()
    for keep in (4, 20, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{keep}.graft"
        bad.write_bytes(data[:keep])
        with pytest.raises(graft.InvalidArgument, match="truncated|damaged|not a graft checkpoint"):
            load_checkpoint(bad)
    flipped = bytearray(data)
    where = data.find(b"fc.weight.adamw.m") + 200  # inside that tensor's data
    flipped[where] ^= 0xFF
    bad = tmp_path / "flipped.graft"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(graft.InvalidArgument, match="tensor 'fc.weight.adamw.m' fails its checksum"):
        load_checkpoint(bad)
    with pytest.raises(graft.InvalidArgument, match="cannot open"):
        load_checkpoint(tmp_path / "missing.graft")


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from graft.checkpoint import save_checkpoint
    path = sys.argv[1]
    step = 1
    while True:
        big = np.full((1 << 22,), float(step), np.float32)  # 16 MiB, so writes take a while
        save_checkpoint(path, {"w": big, "step_copy": np.array([step], np.int64)}, step=step)
        print(step, flush=True)
        step += 1
""")


def test_sigkill_during_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.graft"
    save_checkpoint(path, {"w": np.zeros(4, np.float32), "step_copy": np.array([0], np.int64)}, step=0)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    rng = random.Random(7)
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env, stdout=subprocess.PIPE)
        time.sleep(0.5 + rng.random())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tensors, step, _ = load_checkpoint(path)
        # Whatever was on disk is one whole checkpoint, never a mix of two.
        assert int(tensors["step_copy"][0]) == step
        assert np.all(tensors["w"] == (0.0 if step == 0 else float(step)))
        print(f"attempt {attempt}: killed, checkpoint of step {step} intact")
