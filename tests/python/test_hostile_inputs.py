"""Hostile sizes and versions: element and byte counts that overflow, requests past the memory
limit, opsets newer than graft knows, graphs nested past the parser's limit. Each raises a
graft exception that names the node (or model element) and the size; none crashes the process.

Cases that crashed the process before run in a child process, so a regression fails the test
with the signal instead of ending the test run."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graft

I64, F = TensorProto.INT64, TensorProto.FLOAT
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _model(nodes, inputs, outputs, opset=18, domain=""):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, opset)])
    model.ir_version = 9
    return model


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _constant_of_shape(rank=1):
    return _model([helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill")],
                  [_vi("s", I64, [rank])], [_vi("y", F, None)])


def _range():
    return _model([helper.make_node("Range", ["a", "b", "d"], ["y"], name="span")],
                  [_vi("a", I64, []), _vi("b", I64, []), _vi("d", I64, [])], [_vi("y", I64, None)])


def _run_in_child(model: onnx.ModelProto, feeds: dict, config: dict | None = None,
                  address_space_gib: int | None = None) -> subprocess.CompletedProcess:
    """Runs the model with `feeds` (int64 arrays) in a fresh interpreter; it prints the exception's
    type and message, or OK and the output shapes."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = textwrap.dedent(f"""
        import resource, sys
        import numpy as np
        if {address_space_gib!r}:
            limit = {address_space_gib!r} << 30
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import graft
        options = graft.SessionOptions()
        for key, value in {config or {}!r}.items():
            options.add_session_config_entry(key, value)
        feeds = {{k: np.array(v, dtype=np.int64) for k, v in {feeds!r}.items()}}
        try:
            sess = graft.InferenceSession(bytes.fromhex("{model.SerializeToString().hex()}"), options)
            print("OK", [o.shape for o in sess.run(None, feeds)])
        except Exception as e:
            print(type(e).__name__, e)
    """)
    env = dict(os.environ, PYTHONPATH=os.path.join(root, "python"))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)


def test_constant_of_shape_whose_bytes_overflow_is_refused():
    # 2^62 - 1 float elements: the element count fits in int64, the byte count does not (the
    # allocator's rounding wrapped and the process crashed).
    r = _run_in_child(_constant_of_shape(), {"s": [2**62 - 1]})
    assert r.returncode == 0, f"child died with {r.returncode}: {r.stderr[-2000:]}"
    out = r.stdout.strip()
    assert "[ConstantOfShape] node 'fill'" in out, out
    assert "cannot allocate 18446744073709551612 bytes" in out and "[4611686018427387903]" in out, out


def test_range_whose_bytes_overflow_is_refused():
    r = _run_in_child(_range(), {"a": 0, "b": 2**62, "d": 1})
    assert r.returncode == 0, f"child died with {r.returncode}: {r.stderr[-2000:]}"
    out = r.stdout.strip()
    assert "[Range] node 'span'" in out and str(2**62) in out, out


def test_range_whose_count_overflows_is_refused():
    sess = graft.InferenceSession(_range().SerializeToString())
    feeds = {"a": np.array(INT64_MIN), "b": np.array(INT64_MAX), "d": np.array(1)}
    with pytest.raises(graft.Fail, match=r"\[Range\] node 'span'.*more elements than a 64-bit count"):
        sess.run(None, feeds)


@pytest.mark.parametrize("start, limit, delta", [
    (INT64_MIN, INT64_MIN + 10, 3),
    (INT64_MAX - 10, INT64_MAX, 4),
    (INT64_MAX, INT64_MAX - 7, -2),
    (INT64_MIN, INT64_MAX, 2**62),
    (INT64_MAX, INT64_MIN, -(2**62)),
    (INT64_MIN, INT64_MAX, INT64_MAX),
    (INT64_MAX, INT64_MIN, INT64_MIN),
    (5, -5, 1),
    (-5, 5, -1),
    (0, 0, 7),
])
def test_range_at_the_ends_of_int64_matches_python(start, limit, delta):
    # Python's range is exact for any integers: the independent reference for the count and the
    # values, where the distance between start and limit does not fit in int64.
    sess = graft.InferenceSession(_range().SerializeToString())
    y = sess.run(None, {"a": np.array(start), "b": np.array(limit), "d": np.array(delta)})[0]
    assert y.dtype == np.int64
    assert y.tolist() == list(range(start, limit, delta))


@pytest.mark.parametrize("name, nodes, inputs, feeds", [
    ("rank-3 ConstantOfShape of 2^93 elements",
     [helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill")], [_vi("s", I64, [3])],
     {"s": np.array([2**31] * 3, np.int64)}),
    ("Expand to 2^66 elements",
     [helper.make_node("Expand", ["x", "s"], ["y"], name="grow")], [_vi("x", F, [1]), _vi("s", I64, [2])],
     {"x": np.ones(1, np.float32), "s": np.array([2**33, 2**33], np.int64)}),
    ("OneHot of depth 2^62",
     [helper.make_node("OneHot", ["i", "d", "v"], ["y"], name="hot")],
     [_vi("i", I64, [1]), _vi("d", I64, []), _vi("v", F, [2])],
     {"i": np.array([0], np.int64), "d": np.array(2**62, np.int64), "v": np.array([0, 1], np.float32)}),
    ("Tile by 2^62",
     [helper.make_node("Tile", ["x", "r"], ["y"], name="tile")], [_vi("x", F, [2]), _vi("r", I64, [1])],
     {"x": np.ones(2, np.float32), "r": np.array([2**62], np.int64)}),
    ("Pad by 2^62",
     [helper.make_node("Pad", ["x", "p"], ["y"], name="pad")], [_vi("x", F, [2]), _vi("p", I64, [2])],
     {"x": np.ones(2, np.float32), "p": np.array([2**62, 0], np.int64)}),
    ("Resize by 1e9",
     [helper.make_node("Resize", ["x", "", "s"], ["y"], name="resize")],
     [_vi("x", F, [1, 1, 2, 2]), _vi("s", F, [4])],
     {"x": np.ones((1, 1, 2, 2), np.float32), "s": np.array([1, 1, 1e9, 1e9], np.float32)}),
])
def test_sizes_past_any_memory_name_the_node_and_the_size(name, nodes, inputs, feeds):
    model = _model(nodes, inputs, [_vi("y", F, None)])
    sess = graft.InferenceSession(model.SerializeToString())
    with pytest.raises((graft.Fail, graft.InvalidArgument)) as info:
        sess.run(None, feeds)
    message = str(info.value)
    assert f"node '{nodes[0].name}'" in message, message
    assert "bad_alloc" not in message and "max_size" not in message, message
    # The size that was asked for: an element count, a dimension or a byte count.
    assert any(ch.isdigit() for ch in message.split("node", 1)[1]), message


def test_random_normal_of_2_to_the_62_elements_is_refused_at_creation():
    # Constant folding at session creation computes it; it crashed the process before.
    model = _model([helper.make_node("RandomNormal", [], ["y"], name="noise", shape=[2**31, 2**31])],
                   [], [_vi("y", F, None)])
    r = _run_in_child(model, {})
    assert r.returncode == 0, f"child died with {r.returncode}: {r.stderr[-2000:]}"
    assert "node 'noise'" in r.stdout and "2147483648" in r.stdout, r.stdout


def test_the_session_memory_limit_names_node_output_and_size():
    options = graft.SessionOptions()
    options.add_session_config_entry("session.memory_limit_bytes", str(1 << 20))
    sess = graft.InferenceSession(_constant_of_shape().SerializeToString(), options)
    # 1 MiB holds 2^18 floats: a quarter of that runs, twice that does not.
    assert sess.run(None, {"s": np.array([1 << 16])})[0].shape == (1 << 16,)
    with pytest.raises(graft.Fail) as info:
        sess.run(None, {"s": np.array([1 << 19])})
    message = str(info.value)
    assert "[ConstantOfShape] node 'fill'" in message and "output 0" in message, message
    assert "2097152 bytes" in message and "1048576 bytes" in message, message
    assert "session.memory_limit_bytes" in message, message


def test_the_session_memory_limit_must_be_an_integer():
    options = graft.SessionOptions()
    with pytest.raises(RuntimeError, match="session.memory_limit_bytes"):
        options.add_session_config_entry("session.memory_limit_bytes", "lots")


def test_the_default_memory_limit_refuses_most_of_physical_memory():
    # Nine tenths of the machine's memory is past the default limit (80%). The child's address
    # space is capped a little above that request, so a limit that did not hold fails with another
    # error instead of reaching the kernel's out-of-memory killer.
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    elements = int(physical * 0.9) // 4
    r = _run_in_child(_constant_of_shape(), {"s": [elements]},
                      address_space_gib=int(physical * 0.95) >> 30)
    assert r.returncode == 0, f"child died with {r.returncode}: {r.stderr[-2000:]}"
    out = r.stdout
    assert "[ConstantOfShape] node 'fill'" in out and "default memory limit" in out, out
    assert f"{elements * 4} bytes" in out, out


@pytest.mark.parametrize("domain, version", [("", 99999), ("ai.onnx.ml", 1000)])
def test_an_opset_graft_does_not_know_is_refused(domain, version):
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", F, [2])], [_vi("y", F, [2])])
    del model.opset_import[:]
    model.opset_import.extend([helper.make_opsetid("", 18)] if domain else [])
    model.opset_import.extend([helper.make_opsetid(domain, version)])
    shown = domain or "ai.onnx"
    with pytest.raises(graft.InvalidArgument, match=rf"opset {version} of domain '{shown}'; graft knows"):
        graft.InferenceSession(model.SerializeToString())


def _nested_if_bytes(depth: int) -> bytes:
    """A model whose If nodes nest `depth` graphs deep, written field by field (the protobuf
    runtime refuses to build a message nested this deep)."""

    def field(number: int, payload: bytes) -> bytes:
        out = bytearray()
        for value in ((number << 3) | 2, len(payload)):
            while value >= 0x80:
                out.append((value & 0x7F) | 0x80)
                value >>= 7
            out.append(value)
        return bytes(out) + payload

    leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "leaf", [], [_vi("y", F, [1])])
    graph = leaf.SerializeToString()
    for _ in range(depth):
        attribute = field(1, b"then_branch") + bytes([0x20, 5]) + field(6, graph)  # type GRAPH
        node = field(1, b"c") + field(2, b"y") + field(4, b"If") + field(5, attribute)
        graph = field(1, node) + field(2, b"g") + field(12, _vi("y", F, [1]).SerializeToString())
    return _model([], [], []).SerializeToString() + field(7, graph)


def test_graphs_nested_past_the_parser_limit_are_refused_clearly():
    with pytest.raises(graft.InvalidArgument, match="nested more than 100 messages deep"):
        graft.InferenceSession(_nested_if_bytes(200))


def test_an_axis_past_int32_is_refused_before_shape_inference():
    # ONNX's LayerNormalization shape inference narrows axis to int: 2^63 - 1 became -1 and the
    # process crashed writing before the Mean output's shape (found by the mutation sweep).
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y", "mean", "inv"], name="norm",
                            axis=INT64_MAX)
    model = _model([node], [_vi("x", F, [2, 3]), _vi("s", F, [3])],
                   [_vi("y", F, None), _vi("mean", F, None), _vi("inv", F, None)])
    r = _run_in_child(model, {})
    assert r.returncode == 0, f"child died with {r.returncode}: {r.stderr[-2000:]}"
    assert "[LayerNormalization] node 'norm'" in r.stdout and str(INT64_MAX) in r.stdout, r.stdout


def test_an_error_quoting_bytes_that_are_not_utf8_keeps_its_type():
    # The message quotes the attribute's bytes; they become \xNN escapes instead of the error
    # turning into a UnicodeDecodeError (found by the mutation sweep).
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="resize", mode=b"\xff\xfe")
    model = _model([node], [_vi("x", F, [1, 1, 2, 2]), _vi("s", F, [4])], [_vi("y", F, None)])
    feeds = {"x": np.ones((1, 1, 2, 2), np.float32), "s": np.ones(4, np.float32)}
    with pytest.raises(graft.InvalidArgument, match=r"\[Resize\] node 'resize'.*'\\xff\\xfe'"):
        graft.InferenceSession(model.SerializeToString()).run(None, feeds)


def test_a_loop_whose_condition_is_not_a_bool_is_refused():
    # A float condition (the operator allows only bool) ran on, ever longer (found by the mutation
    # sweep; onnxruntime refuses the model).
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [_vi("i", I64, []), _vi("c_in", F, []), _vi("v_in", F, [1])],
        [_vi("c_out", F, []), _vi("v_out", F, [1])])
    node = helper.make_node("Loop", ["m", "c", "v"], ["r"], name="loop", body=body)
    model = _model([node], [_vi("m", I64, []), _vi("c", F, []), _vi("v", F, [1])], [_vi("r", F, [1])])
    feeds = {"m": np.array(3, np.int64), "c": np.array(1.0, np.float32), "v": np.ones(1, np.float32)}
    with pytest.raises(graft.Fail, match=r"\[Loop\] node 'loop': input 'cond' must be one bool, got float"):
        graft.InferenceSession(model.SerializeToString()).run(None, feeds)


def test_terminate_stops_a_loop_of_2_to_the_63_iterations():
    # A Loop may ask for unbounded work (a trip count of INT64_MAX with a condition that stays
    # true), as onnxruntime runs it too; RunOptions.terminate reaches the nodes of its body.
    import threading
    import time

    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Add", ["v_in", "v_in"], ["v_out"])],
        "body", [_vi("i", I64, []), _vi("c_in", TensorProto.BOOL, []), _vi("v_in", F, [1])],
        [_vi("c_out", TensorProto.BOOL, []), _vi("v_out", F, [1])])
    node = helper.make_node("Loop", ["m", "c", "v"], ["r"], name="loop", body=body)
    model = _model([node], [_vi("m", I64, []), _vi("c", TensorProto.BOOL, []), _vi("v", F, [1])],
                   [_vi("r", F, [1])])
    sess = graft.InferenceSession(model.SerializeToString())
    feeds = {"m": np.array(INT64_MAX, np.int64), "c": np.array(True), "v": np.ones(1, np.float32)}
    options = graft.RunOptions()
    timer = threading.Timer(0.2, lambda: setattr(options, "terminate", True))
    timer.start()
    start = time.monotonic()
    with pytest.raises(graft.Fail, match="terminate flag"):
        sess.run(None, feeds, options)
    assert time.monotonic() - start < 30
