"""The mutation sweep (tests/reliability/mutation_sweep.py): 300 seeded mutants of the ONNX node
test models, each in a forked child, neither crash nor hang graft; and the sweep's classifier
counts a child that dies of a signal, exits without reporting or outlives the timeout as the
failure it is (the sweep can fail)."""

import os
import signal
import sys
import time

import numpy as np
import pytest
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reliability"))
import mutation_sweep  # noqa: E402


def test_bounded_sweep_neither_crashes_nor_hangs(tmp_path):
    start = time.monotonic()
    corpus = mutation_sweep.load_corpus()
    assert len(corpus) > 1000, len(corpus)
    assert mutation_sweep.check_harness(corpus) is None
    reports = []
    outcomes = mutation_sweep.sweep(corpus, mutation_sweep.make_context(corpus), 300, seed=11, jobs=2,
                                    timeout=20.0, save_dir=str(tmp_path), report=reports.append)
    print(mutation_sweep.summary(outcomes, 300, 11), f"in {time.monotonic() - start:.0f} s")
    assert not outcomes["crash"] and not outcomes["hang"], "\n".join(reports)
    assert outcomes["clean error"] + outcomes["ok"] == 300
    assert outcomes["ok"] > 30 and outcomes["clean error"] > 30, outcomes  # mutants reach both ends


def _add_model():
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["c"])], "add",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _misbehave(mutant):
    """Mutant 0 dies of SIGSEGV, 1 exits without reporting, 2 hangs, 3 raises; the rest run."""
    if mutant.index == 0:
        os.kill(os.getpid(), signal.SIGSEGV)
    if mutant.index == 1:
        os._exit(3)
    if mutant.index == 2:
        time.sleep(60)
    if mutant.index == 3:
        raise ValueError("a clean error")


def test_classifier_counts_signals_silent_exits_and_hangs(tmp_path):
    x = np.ones(3, np.float32)
    corpus = [mutation_sweep.Case("test_add", _add_model(), {"a": x, "b": x})]
    context = mutation_sweep.make_context(corpus)
    outcomes = mutation_sweep.sweep(corpus, context, 6, seed=5, jobs=2, timeout=2.0, save_dir=str(tmp_path),
                                    report=print, runner=_misbehave)
    crashes = sorted(outcomes["crash"], key=lambda m: m.index)
    assert [m.index for m in crashes] == [0, 1]
    assert crashes[0].reason == "signal SIGSEGV"
    assert crashes[1].reason == "exit status 3 without reporting"
    assert [m.index for m in outcomes["hang"]] == [2]
    assert (outcomes["clean error"], outcomes["ok"]) == (1, 2)
    assert mutation_sweep.summary(outcomes, 6, 5) == "crashes 2, hangs 1, clean errors 1, ok 2 (of 6 mutants, seed 5)"
    # Each crashing or hanging mutant is saved with its feeds and a one-line reason.
    saved = sorted(os.listdir(tmp_path))
    assert saved == [f"mutant_5_00000{i}.{ext}" for i in range(3) for ext in ("onnx", "pkl", "txt")]
    reason = (tmp_path / "mutant_5_000000.txt").read_text()
    assert reason.startswith("crash (signal SIGSEGV): mutant 0 of test_add: ") and reason.count("\n") == 1


def test_mutants_are_reproducible():
    x = np.ones(3, np.float32)
    corpus = [mutation_sweep.Case("test_add", _add_model(), {"a": x, "b": x})]
    context = mutation_sweep.make_context(corpus)
    first = [mutation_sweep.make_mutant(corpus, context, 7, i) for i in range(20)]
    again = [mutation_sweep.make_mutant(corpus, context, 7, i) for i in range(20)]
    assert [(m.blob, m.mutations, m.feed_mutation) for m in first] == \
        [(m.blob, m.mutations, m.feed_mutation) for m in again]
    assert len({m.blob for m in first}) > 15


@pytest.mark.parametrize("kind", sorted(mutation_sweep.mutations.PROTOBUF_MUTATIONS))
def test_every_protobuf_mutation_applies(kind):
    """Each mutation finds something to change in a model with attributes and nested graphs."""
    import random

    import onnx

    x = np.ones((1, 1, 4, 4), np.float32)
    conv = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    body = helper.make_graph([helper.make_node("Relu", ["y"], ["z"])], "then",
                             [], [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    cond = helper.make_node("Constant", [], ["c"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True]))
    branch = helper.make_node("If", ["c"], ["out"], then_branch=body, else_branch=body)
    graph = helper.make_graph([conv, cond, branch], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4]),
                               helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 1, 3, 3])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    base = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    context = {"op_types": ["Relu", "Conv"], "attribute_names": ["axis"], "strings": [b"x"],
               "feeds": {"x": x, "w": np.ones((1, 1, 3, 3), np.float32)}}
    applied = changed = 0
    for seed in range(20):
        model = onnx.ModelProto()
        model.CopyFrom(base)
        text = mutation_sweep.mutations.PROTOBUF_MUTATIONS[kind](model, random.Random(seed), context)
        applied += text is not None
        changed += model.SerializeToString() != base.SerializeToString()
    assert applied >= 10 and changed >= 10, (kind, applied, changed)
