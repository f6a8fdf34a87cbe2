"""Training from several Python threads: a TrainingSession's calls, and those of a Module and
Optimizer over one CheckpointState, are serialized (a second caller waits), so two threads'
steps all count and end where one thread making every call ends. InferenceSession.run, which
changes nothing, runs from many threads at once."""

import threading

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import graft
from graft.training import OptimType, TrainingSession, generate_artifacts
from graft.training.api import CheckpointState, Module, Optimizer


def _mlp(loss_first: bool = False) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    params = {"fc1.weight": (rng.standard_normal((32, 6)) * 0.4).astype(np.float32),
              "fc1.bias": np.zeros(32, np.float32),
              "fc2.weight": (rng.standard_normal((3, 32)) * 0.4).astype(np.float32),
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


# One batch for every step: each step is then the same function of the state, so any order of
# the two threads' steps ends where a serial run ends, bit for bit. Steps that overlapped would
# read state another step is writing, and lose steps or fail.
X = np.random.default_rng(1).standard_normal((16, 6)).astype(np.float32)
FEEDS = {"x": X, "target": np.tanh(X[:, :3]).astype(np.float32)}


def _together(*jobs) -> None:
    """Runs each job, a (call, times) pair, in a thread of its own, the threads started at once;
    raises the first error any of them met."""
    start = threading.Barrier(len(jobs))
    errors = []

    def body(call, times):
        start.wait()
        try:
            for _ in range(times):
                call()
        except Exception as e:  # noqa: BLE001 - raised below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=body, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _raw(tensors: dict) -> dict[str, tuple]:
    return {name: (v.dtype, v.shape, np.ascontiguousarray(v).tobytes()) for name, v in tensors.items()}


def _session() -> TrainingSession:
    return TrainingSession(_mlp(), loss="loss", optimizer="adamw", lr=0.01, intra_op_num_threads=1)


def test_two_threads_train_one_training_session_as_one_thread_would():
    serial = _session()
    for _ in range(400):
        serial.train_step(FEEDS)
    shared = _session()
    step = (lambda: shared.train_step(FEEDS), 200)
    _together(step, step)
    assert shared.step == 400
    assert _raw(shared.state()) == _raw(serial.state())


def test_evaluation_and_reads_wait_for_the_steps_of_other_threads():
    serial = _session()
    for _ in range(200):
        serial.train_step(FEEDS)
    shared = _session()
    read = (lambda: (shared.eval_step(FEEDS), shared.state(), shared.step, shared.learning_rate), 200)
    _together((lambda: shared.train_step(FEEDS), 200), read, read)
    assert shared.step == 200
    assert _raw(shared.state()) == _raw(serial.state())


def test_split_steps_from_two_threads_all_count():
    shared = _session()

    def accumulate_and_step():
        shared.forward_backward(FEEDS)
        shared.optimizer_step()
        shared.lazy_reset_grad()

    _together((accumulate_and_step, 100), (accumulate_and_step, 100))
    assert shared.step == 200


def test_two_threads_share_a_module_and_its_optimizer(tmp_path):
    generate_artifacts(_mlp(loss_first=True), optimizer=OptimType.AdamW, artifact_directory=tmp_path)

    def build():
        state = CheckpointState.load_checkpoint(tmp_path / "checkpoint")
        module = Module(tmp_path / "training_model.onnx", state, tmp_path / "eval_model.onnx")
        return state, module, Optimizer(tmp_path / "optimizer_model.onnx", module)

    # Each train call adds the same gradient (the parameters do not move while only the module
    # runs); each optimizer step is then the same function of the state.
    serial_state, serial_module, serial_optimizer = build()
    for _ in range(400):
        serial_module(FEEDS["x"], FEEDS["target"])
    serial_grads = _raw(serial_module.grads)
    for _ in range(400):
        serial_optimizer.step()

    state, module, optimizer = build()
    train = (lambda: module(FEEDS["x"], FEEDS["target"]), 200)
    _together(train, train)
    assert _raw(module.grads) == serial_grads
    _together((optimizer.step, 200), (optimizer.step, 200))
    assert state.step == 400
    assert _raw(state.tensors) == _raw(serial_state.tensors)

    # Training calls, optimizer steps and evaluation (a second Module over the same state) from
    # three threads at once: each call waits for the one running, none fails, every step counts.
    evaluator = Module(tmp_path / "training_model.onnx", state, tmp_path / "eval_model.onnx").eval()
    _together((lambda: module(FEEDS["x"], FEEDS["target"]), 100), (optimizer.step, 100),
              (lambda: evaluator(FEEDS["x"], FEEDS["target"]), 100))
    assert state.step == 500


def test_inference_session_runs_from_eight_threads_as_serially():
    model = _mlp()
    sess = graft.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((16, 6)).astype(np.float32) for _ in range(8)]
    target = np.zeros((16, 3), np.float32)
    serial = [sess.run(None, {"x": x, "target": target}) for x in inputs]
    results = [[] for _ in inputs]
    _together(*[(lambda i=i: results[i].append(sess.run(None, {"x": inputs[i], "target": target})), 25)
                for i in range(len(inputs))])
    for i, runs in enumerate(results):
        assert len(runs) == 25
        for outputs in runs:
            for got, want in zip(outputs, serial[i]):
                np.testing.assert_array_equal(got, want)
