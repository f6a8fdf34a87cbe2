"""A checkpoint is loaded all or nothing: files edited byte by byte (their checksums recomputed,
so only the check under test can refuse them) are refused by name, and the TrainingSession, or
the training API's state, module and optimizer, stay exactly as they were and train on."""

import json
import struct
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graft
from graft.checkpoint import load_checkpoint, save_checkpoint
from graft.training import OptimType, TrainingSession, generate_artifacts
from graft.training.api import CheckpointState, Module, Optimizer

# 3 * WRAPS is 2**64 + 2: multiplied without checks, dims [3, WRAPS] claim two elements.
WRAPS = 6148914691236517206


class CheckpointFile:
    """A checkpoint as train/checkpoint.cc lays it out: "GRAFTCK1", the step, the properties
    (length-prefixed key and value), the tensor entries (a serialized TensorProto and its
    CRC-32) and the CRC-32 of everything before it, integers as little-endian u64."""

    def __init__(self, data: bytes) -> None:
        assert data[:8] == b"GRAFTCK1"
        self.pos = 8
        self.data = data
        self.step = self._u64()
        self.properties = {}
        for _ in range(self._u64()):
            key = self._bytes().decode()
            self.properties[key] = self._bytes().decode()
        self.tensors = []
        for _ in range(self._u64()):
            proto = TensorProto()
            proto.ParseFromString(self._bytes())
            self._u64()  # its CRC, recomputed by to_bytes
            self.tensors.append(proto)
        assert self.pos == len(data) - 8

    def _u64(self) -> int:
        value = struct.unpack_from("<Q", self.data, self.pos)[0]
        self.pos += 8
        return value

    def _bytes(self) -> bytes:
        n = self._u64()
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def tensor(self, name: str) -> TensorProto:
        return next(t for t in self.tensors if t.name == name)

    def to_bytes(self) -> bytes:
        def field(b: bytes) -> bytes:
            return struct.pack("<Q", len(b)) + b

        out = b"GRAFTCK1" + struct.pack("<QQ", self.step, len(self.properties))
        for key, value in self.properties.items():
            out += field(key.encode()) + field(value.encode())
        out += struct.pack("<Q", len(self.tensors))
        for t in self.tensors:
            entry = t.SerializeToString()
            out += field(entry) + struct.pack("<Q", zlib.crc32(entry))
        return out + struct.pack("<Q", zlib.crc32(out))


def _overflowing(f: CheckpointFile) -> None:
    extra = TensorProto(name="extra", data_type=TensorProto.FLOAT, dims=[3, WRAPS])
    extra.raw_data = b"\0" * 8
    f.tensors.append(extra)


def _set_dtype(name: str, dtype: int):
    return lambda f: f.tensor(name).__setattr__("data_type", dtype)


def _transpose_dims(name: str):
    def edit(f: CheckpointFile) -> None:
        dims = list(f.tensor(name).dims)
        del f.tensor(name).dims[:]
        f.tensor(name).dims.extend(reversed(dims))
    return edit


def _drop(name: str):
    return lambda f: f.tensors.remove(f.tensor(name))


def _property(key: str, value: str):
    return lambda f: f.properties.__setitem__(key, value)


def _negative_step(f: CheckpointFile) -> None:
    f.step = 2**64 - 5


def _mlp(loss_first: bool = False):
    rng = np.random.default_rng(0)
    params = {"fc1.weight": (rng.standard_normal((16, 6)) * 0.4).astype(np.float32),
              "fc1.bias": np.zeros(16, np.float32),
              "fc2.weight": (rng.standard_normal((3, 16)) * 0.4).astype(np.float32),
              "fc2.bias": np.zeros(3, np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], transB=1),
             helper.make_node("Tanh", ["h"], ["a"]),
             helper.make_node("Gemm", ["a", "fc2.weight", "fc2.bias"], ["y"], transB=1),
             helper.make_node("Sub", ["y", "target"], ["err"]),
             helper.make_node("Mul", ["err", "err"], ["sq"]),
             helper.make_node("ReduceMean", ["sq"], ["loss"], keepdims=0)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
               helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6]),
                                             helper.make_tensor_value_info("target", TensorProto.FLOAT, ["N", 3])],
                              outputs[::-1] if loss_first else outputs,
                              [numpy_helper.from_array(v, k) for k, v in params.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


def _feeds(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    return {"x": x, "target": np.tanh(x[:, :3]).astype(np.float32)}


def _raw(tensors: dict) -> dict[str, tuple]:
    """Each tensor as (dtype, shape, bytes): equal means equal bit for bit."""
    return {name: (v.dtype, v.shape, np.ascontiguousarray(v).tobytes()) for name, v in tensors.items()}


SESSION_CASES = [
    ("learning rate", _property("graft.lr", "abc"), r"property 'graft\.lr' holds 'abc'"),
    ("generator", _property("graft.rng", "garbage"), r"property 'graft\.rng'"),
    ("element type", _set_dtype("fc1.weight", TensorProto.INT32),
     r"tensor 'fc1\.weight' is int32 \[16, 6\], the session holds float \[16, 6\]"),
    ("shape", _transpose_dims("fc1.weight"), r"tensor 'fc1\.weight' is float \[6, 16\]"),
    ("optimizer state", _set_dtype("fc2.weight.adamw.v", TensorProto.INT32),
     r"tensor 'fc2\.weight\.adamw\.v' is int32"),
    ("overflowing dims", _overflowing, r"tensor 'extra' has dims .*: element count: .* overflows"),
    ("missing parameter", _drop("fc2.bias"), r"has no tensor 'fc2\.bias'"),
    ("missing optimizer state", _drop("fc1.bias.adamw.m"), r"has no tensor 'fc1\.bias\.adamw\.m'"),
    ("negative step", _negative_step, r"step counter is -5"),
]


@pytest.mark.parametrize("kind, edit, message", SESSION_CASES, ids=[c[0] for c in SESSION_CASES])
def test_training_session_refuses_a_bad_checkpoint_and_is_unchanged(tmp_path, kind, edit, message):
    sess = TrainingSession(_mlp(), loss="loss", optimizer="adamw", lr=0.01)
    sess.train_step(_feeds(0))
    good, bad = tmp_path / "good.ckpt", tmp_path / "bad.ckpt"
    sess.save_checkpoint(good)
    # The session moves on, so that whatever a partial load wrote would show.
    sess.train_step(_feeds(1))
    sess.learning_rate = 0.5
    graft.seed(77)
    before, step, rng = _raw(sess.state()), sess.step, graft.get_rng_state()

    file = CheckpointFile(good.read_bytes())
    bad.write_bytes(file.to_bytes())
    assert _raw(load_checkpoint(bad)[0]) == _raw(load_checkpoint(good)[0])  # written back alike
    edit(file)
    bad.write_bytes(file.to_bytes())
    with pytest.raises(graft.InvalidArgument, match=r"bad\.ckpt.*" + message):
        sess.load_checkpoint(bad)
    assert _raw(sess.state()) == before
    assert (sess.step, sess.learning_rate, graft.get_rng_state()) == (step, 0.5, rng)
    sess.train_step(_feeds(2))
    assert sess.step == 3


def test_training_session_refuses_a_truncated_checkpoint_and_is_unchanged(tmp_path):
    sess = TrainingSession(_mlp(), loss="loss", optimizer="adamw", lr=0.01)
    sess.train_step(_feeds(0))
    sess.save_checkpoint(tmp_path / "good.ckpt")
    sess.train_step(_feeds(1))
    before = _raw(sess.state())
    data = (tmp_path / "good.ckpt").read_bytes()
    for keep in (4, 40, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.ckpt").write_bytes(data[:keep])
        with pytest.raises(graft.InvalidArgument, match=r"cut\.ckpt.*(truncated|damaged|not a graft checkpoint)"):
            sess.load_checkpoint(tmp_path / "cut.ckpt")
        assert _raw(sess.state()) == before and sess.step == 2
    sess.train_step(_feeds(2))
    assert sess.step == 3


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    out = tmp_path_factory.mktemp("artifacts")
    generate_artifacts(_mlp(loss_first=True), optimizer=OptimType.AdamW, artifact_directory=out)
    return out


def _trained(artifacts, tmp_path):
    """A state trained two steps, saved with its optimizer state after the first."""
    state = CheckpointState.load_checkpoint(artifacts / "checkpoint")
    module = Module(artifacts / "training_model.onnx", state, artifacts / "eval_model.onnx")
    optimizer = Optimizer(artifacts / "optimizer_model.onnx", module)
    for seed in range(2):
        module(*_feeds(seed).values())
        optimizer.step()
        module.lazy_reset_grad()
        if seed == 0:
            CheckpointState.save_checkpoint(state, tmp_path / "good.ckpt", include_optimizer_state=True)
    return state, module, optimizer


API_LOAD_CASES = [
    ("learning rate", _property("graft.lr", "abc"), r"property 'graft\.lr' holds 'abc'"),
    ("negative learning rate", _property("graft.lr", "-0.5"), r"property 'graft\.lr'.*negative"),
    ("generator", _property("graft.rng", "garbage"), r"property 'graft\.rng'"),
    ("overflowing dims", _overflowing, r"tensor 'extra' has dims .*: element count: .* overflows"),
    ("negative step", _negative_step, r"step counter is -5"),
    ("unlisted optimizer state", _drop("fc1.weight.adamw.m"),
     r"'graft\.optimizer_state' names 'fc1\.weight\.adamw\.m'"),
]

# Files CheckpointState loads, refused where a Module or Optimizer takes the state.
API_USE_CASES = [
    ("element type", _set_dtype("fc1.weight", TensorProto.INT32), r"parameter 'fc1\.weight'.*element type"),
    ("shape", _transpose_dims("fc1.weight"), r"parameter 'fc1\.weight'.*dimension"),
    ("missing parameter", _drop("fc2.bias"), r"has no parameter 'fc2\.bias'"),
    ("optimizer state", _set_dtype("fc2.weight.adamw.v", TensorProto.INT32),
     r"optimizer state 'fc2\.weight\.adamw\.v'.*element type"),
]


def _check_unchanged(state, module, optimizer, before, rng):
    assert _raw(state.tensors) == before and state.step == 2
    assert graft.get_rng_state() == rng
    module(*_feeds(3).values())
    optimizer.step()
    assert state.step == 3


@pytest.mark.parametrize("kind, edit, message", API_LOAD_CASES, ids=[c[0] for c in API_LOAD_CASES])
def test_training_api_refuses_a_bad_checkpoint_as_it_loads(artifacts, tmp_path, kind, edit, message):
    state, module, optimizer = _trained(artifacts, tmp_path)
    graft.seed(5)
    before, rng = _raw(state.tensors), graft.get_rng_state()
    file = CheckpointFile((tmp_path / "good.ckpt").read_bytes())
    edit(file)
    (tmp_path / "bad.ckpt").write_bytes(file.to_bytes())
    with pytest.raises(graft.InvalidArgument, match=r"bad\.ckpt.*" + message):
        CheckpointState.load_checkpoint(tmp_path / "bad.ckpt")
    _check_unchanged(state, module, optimizer, before, rng)


@pytest.mark.parametrize("kind, edit, message", API_USE_CASES, ids=[c[0] for c in API_USE_CASES])
def test_training_api_refuses_a_checkpoint_that_does_not_fit_the_model(artifacts, tmp_path, kind, edit, message):
    state, module, optimizer = _trained(artifacts, tmp_path)
    before = _raw(state.tensors)
    file = CheckpointFile((tmp_path / "good.ckpt").read_bytes())
    edit(file)
    if kind == "optimizer state":
        # As a TrainingSession writes it: the moments among the parameters, for the Optimizer
        # to claim, which it must not do in part.
        del file.properties["graft.optimizer_state"]
    (tmp_path / "bad.ckpt").write_bytes(file.to_bytes())
    loaded = CheckpointState.load_checkpoint(tmp_path / "bad.ckpt")
    rng = graft.get_rng_state()
    loaded_before = (_raw(loaded.tensors), set(loaded.optimizer_state), dict(loaded._state.properties()))
    with pytest.raises(graft.InvalidArgument, match=r"bad\.ckpt.*" + message):
        resumed = Module(artifacts / "training_model.onnx", loaded)
        Optimizer(artifacts / "optimizer_model.onnx", resumed)
    assert (_raw(loaded.tensors), set(loaded.optimizer_state), dict(loaded._state.properties())) == loaded_before
    _check_unchanged(state, module, optimizer, before, rng)


def test_training_api_refuses_a_truncated_checkpoint(artifacts, tmp_path):
    state, module, optimizer = _trained(artifacts, tmp_path)
    before, rng = _raw(state.tensors), graft.get_rng_state()
    data = (tmp_path / "good.ckpt").read_bytes()
    for keep in (4, 40, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.ckpt").write_bytes(data[:keep])
        with pytest.raises(graft.InvalidArgument, match=r"cut\.ckpt.*(truncated|damaged|not a graft checkpoint)"):
            CheckpointState.load_checkpoint(tmp_path / "cut.ckpt")
    _check_unchanged(state, module, optimizer, before, rng)


def _shape(name, shape):
    return lambda shapes: json.dumps({**shapes, name: shape})


@pytest.mark.parametrize("edit, message", [
    (lambda shapes: "not json", r"'graft\.nominal' is not JSON"),
    (_shape("fc1.weight", [-1, 6]), r"parameter 'fc1\.weight' has shape \[-1, 6\]"),
    (_shape("fc1.weight", [3, WRAPS]), r"parameter 'fc1\.weight' has shape \[3, 6148914691236517206\]"),
    (_shape("fc1.weight", "16x6"), r"parameter 'fc1\.weight' has shape '16x6'"),
    (lambda shapes: json.dumps({k: v for k, v in shapes.items() if k != "fc2.bias"}),
     r"no shape recorded for parameter 'fc2\.bias'"),
], ids=["not json", "negative", "overflowing", "not a list", "missing"])
def test_nominal_checkpoint_with_bad_shapes_is_refused(tmp_path, edit, message):
    generate_artifacts(_mlp(loss_first=True), optimizer=OptimType.AdamW, artifact_directory=tmp_path,
                       nominal_checkpoint=True)
    CheckpointState.load_checkpoint(tmp_path / "nominal_checkpoint")  # as written, it loads
    file = CheckpointFile((tmp_path / "nominal_checkpoint").read_bytes())
    file.properties["graft.nominal"] = edit(json.loads(file.properties["graft.nominal"]))
    (tmp_path / "bad.ckpt").write_bytes(file.to_bytes())
    graft.seed(9)
    rng = graft.get_rng_state()
    with pytest.raises(graft.InvalidArgument, match=r"bad\.ckpt.*" + message):
        CheckpointState.load_checkpoint(tmp_path / "bad.ckpt")
    assert graft.get_rng_state() == rng


def test_load_checkpoint_to_model_is_all_or_nothing(tmp_path):
    from graft.training import onnxblock

    model = _mlp()
    params = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    save_checkpoint(tmp_path / "ckpt", {"fc1.bias": np.ones(16, np.float32),
                                        "fc2.weight": np.ones((16, 3), np.float32)})
    before = model.SerializeToString()
    with pytest.raises(ValueError, match=r"tensor 'fc2\.weight' is float32 \[16, 3\].*float32 \[3, 16\]"):
        onnxblock.load_checkpoint_to_model(tmp_path / "ckpt", model)
    assert model.SerializeToString() == before
    save_checkpoint(tmp_path / "ckpt", {"fc1.bias": np.ones(16, np.float32)})
    onnxblock.load_checkpoint_to_model(tmp_path / "ckpt", model)
    loaded = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert (loaded["fc1.bias"] == 1).all() and loaded["fc2.weight"].tobytes() == params["fc2.weight"].tobytes()
