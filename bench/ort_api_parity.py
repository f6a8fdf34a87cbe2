"""Runs the same onnxruntime API calls through graft and through onnxruntime and prints the calls
whose results differ.

Each probe is one use of the API as onnxruntime's documentation shows it; its result is reduced
to something comparable (values, types, shapes, the exception class a bad call raises). A probe
that raises in one engine and not in the other differs. Usage:

    PYTHONPATH=python python bench/ort_api_parity.py [--all]

--all also prints the probes that agree. Exit status 0 either way: this is a report.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import traceback
from typing import Any, Callable

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

import graft

IR_VERSION = 10
X = np.array([[1, 2], [3, 4], [5, 6]], np.float32)


def _model(nodes, inputs, outputs, inits=(), opset=18, **kwargs) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION, **kwargs)
    return m.SerializeToString()


MUL = _model([helper.make_node("Mul", ["X", "W"], ["Y"], name="mul_0")],
             [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 2])],
             [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 2])],
             [numpy_helper.from_array(np.array([[1, 2], [3, 4], [5, 6]], np.float32), "W")],
             producer_name="parity", doc_string="doc")
SYMBOLIC = _model([helper.make_node("Abs", ["x"], ["y"])],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5])])
STRINGS = _model([helper.make_node("Identity", ["s"], ["t"])],
                 [helper.make_tensor_value_info("s", TensorProto.STRING, [2])],
                 [helper.make_tensor_value_info("t", TensorProto.STRING, [2])])
SEQUENCE = _model([helper.make_node("SequenceConstruct", ["a", "b"], ["s"])],
                  [helper.make_tensor_value_info(n, TensorProto.INT64, [2]) for n in "ab"],
                  [helper.make_tensor_sequence_value_info("s", TensorProto.INT64, None)])


def _summary(value: Any) -> Any:
    """A form of a result both engines' objects reduce to."""
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, value.tolist())
    if isinstance(value, (list, tuple)):
        return type(value).__name__, [_summary(v) for v in value]
    if isinstance(value, dict):
        return {k: _summary(v) for k, v in value.items()}
    if hasattr(value, "is_tensor") and hasattr(value, "numpy"):  # an OrtValue
        return ("OrtValue", value.data_type(), value.shape() if value.is_tensor() else None,
                _summary(value.numpy()) if value.is_tensor() else None)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _probes(rt: Any) -> dict[str, Callable[[], Any]]:
    """The calls, written once against the engine module `rt` (graft or onnxruntime)."""

    def session(data=MUL, **kwargs):
        return rt.InferenceSession(data, providers=["CPUExecutionProvider"], **kwargs)

    def ortvalue():
        return rt.OrtValue.ortvalue_from_numpy(X)

    def with_options(**settings):
        so = rt.SessionOptions()
        for k, v in settings.items():
            setattr(so, k, v)
        return so

    def terminate_before_run():
        ro = rt.RunOptions()
        ro.terminate = True
        return session().run(None, {"X": X}, ro)

    def run_async():
        done, out = threading.Event(), []
        session().run_async(["Y"], {"X": X}, lambda r, d, e: (out.append((r, d, e)), done.set()), 7)
        done.wait(10)
        return out[0]

    def iobinding_preallocated():
        sess = session()
        binding = sess.io_binding()
        y = rt.OrtValue.ortvalue_from_shape_and_type([3, 2], np.float32)
        binding.bind_cpu_input("X", X)
        binding.bind_ortvalue_output("Y", y)
        sess.run_with_iobinding(binding)
        return y.numpy()

    def iobinding_outputs():
        sess = session()
        binding = sess.io_binding()
        binding.bind_cpu_input("X", X)
        binding.bind_output("Y")
        sess.run_with_iobinding(binding)
        return [o.device_name() for o in binding.get_outputs()], binding.copy_outputs_to_cpu()

    def add_initializer():
        # onnxruntime reads the initializer's memory for the session's life: keep it alive.
        weight = np.ones((3, 2), np.float32)
        value = rt.OrtValue.ortvalue_from_numpy(weight)
        so = rt.SessionOptions()
        so.add_initializer("W", value)
        return session(sess_options=so).run(None, {"X": X})

    def free_dims():
        so = rt.SessionOptions()
        so.add_free_dimension_override_by_name("batch", 4)
        return session(SYMBOLIC, sess_options=so).get_inputs()[0].shape

    def config_entry(key, value):
        so = rt.SessionOptions()
        so.add_session_config_entry(key, value)
        return so.get_session_config_entry(key)

    def missing_config():
        return rt.SessionOptions().get_session_config_entry("nope")

    def sparse_coo():
        st = rt.SparseTensor.sparse_coo_from_numpy([3, 3], np.array([1.0, 2.0], np.float32), np.array([1, 5], np.int64),
                                                   rt.OrtDevice.make("cpu", 0))
        return st.format().name, st.dense_shape(), st.data_type(), st.values(), st.as_coo_view().indices()

    def sparse_csr():
        st = rt.SparseTensor.sparse_csr_from_numpy([2, 3], np.array([1.0, 2.0], np.float32), np.array([0, 2], np.int64),
                                                   np.array([0, 1, 2], np.int64), rt.OrtDevice.make("cpu", 0))
        return st.format().name, st.as_csrc_view().inner(), st.as_csrc_view().outer()

    def dlpack_round_trip():
        v = ortvalue()
        return rt.OrtValue.from_dlpack(v.__dlpack__()).numpy(), v.__dlpack_device__()

    def optimized_model():
        with tempfile.TemporaryDirectory() as d:
            so = rt.SessionOptions()
            so.optimized_model_filepath = os.path.join(d, "opt.onnx")
            so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "w.bin")
            so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "8")
            session(sess_options=so)
            return sorted(os.listdir(d))

    def backend_blocked():
        import importlib

        return importlib.import_module(rt.__name__ + ".backend").prepare(MUL, enable_profiling=True)

    def backend_run():
        import importlib

        return importlib.import_module(rt.__name__ + ".backend").run(MUL, [X])

    return {
        "get_all_providers()[-1]": lambda: rt.get_all_providers()[-1],
        "get_available_providers() has CPU": lambda: "CPUExecutionProvider" in rt.get_available_providers(),
        "get_device()": rt.get_device,
        "'Build Info' in get_build_info()": lambda: "Build Info" in rt.get_build_info(),
        "disable/enable_telemetry_events()": lambda: (rt.disable_telemetry_events(), rt.enable_telemetry_events()),
        "set_default_logger_severity(3)": lambda: rt.set_default_logger_severity(3),
        "InferenceSession(bytes).run": lambda: session().run(None, {"X": X}),
        "run with a list input": lambda: session().run(None, {"X": X.tolist()}),
        "run with output names": lambda: session().run(["Y"], {"X": X}),
        "run with a missing input": lambda: session().run(None, {}),
        "run with an unknown output": lambda: session().run(["Z"], {"X": X}),
        "run with a wrong dtype": lambda: session().run(None, {"X": X.astype(np.float64)}),
        "run strings": lambda: session(STRINGS).run(None, {"s": np.array(["a", "β"])}),
        "run a sequence output": lambda: session(SEQUENCE).run(None, {"a": np.array([1, 2]), "b": np.array([3, 4])}),
        "get_inputs name/type/shape": lambda: [(i.name, i.type, i.shape) for i in session().get_inputs()],
        "get_outputs symbolic shape": lambda: [(o.name, o.shape) for o in session(SYMBOLIC).get_outputs()],
        "get_modelmeta": lambda: (lambda m: (m.producer_name, m.graph_name, m.graph_description, m.domain,
                                             m.description, m.version, m.custom_metadata_map))(
            session().get_modelmeta()),
        "get_providers": lambda: session().get_providers(),
        "get_provider_options": lambda: session().get_provider_options(),
        "set_providers(['InvalidProvider'])": lambda: session().set_providers(["InvalidProvider"]),
        "get_session_options().intra_op_num_threads": lambda: session(
            sess_options=with_options(intra_op_num_threads=1)).get_session_options().intra_op_num_threads,
        "SessionOptions defaults": lambda: (lambda so: (so.graph_optimization_level, so.execution_mode,
                                                        so.enable_mem_pattern, so.log_severity_level))(
            rt.SessionOptions()),
        "add_session_config_entry unknown key": lambda: config_entry("my.key", "v"),
        "get_session_config_entry missing": missing_config,
        "add_initializer": add_initializer,
        "add_free_dimension_override_by_name": free_dims,
        "RunOptions.terminate before run": terminate_before_run,
        "RunOptions run config entry": lambda: (lambda ro: (ro.add_run_config_entry("k", "v"),
                                                            ro.get_run_config_entry("k")))(rt.RunOptions()),
        "run_async": run_async,
        "OrtValue.ortvalue_from_numpy describe": lambda: (lambda v: (v.shape(), v.data_type(), v.element_type(),
                                                                     v.device_name(), v.is_tensor(),
                                                                     v.tensor_size_in_bytes()))(ortvalue()),
        # The elements are left unspecified (graft zero-fills them): compare the description.
        "OrtValue.ortvalue_from_shape_and_type": lambda: (lambda v: (v.shape(), v.data_type()))(
            rt.OrtValue.ortvalue_from_shape_and_type([2, 2], np.int32)),
        "OrtValue bfloat16 from onnx type": lambda: rt.OrtValue.ortvalue_from_numpy_with_onnx_type(
            np.array([0x3F80], np.uint16), TensorProto.BFLOAT16).element_type(),
        "OrtValue.update_inplace": lambda: (lambda v: (v.update_inplace(X * 2), v.numpy())[1])(
            rt.OrtValue.ortvalue_from_numpy(X.copy())),
        "OrtValue DLPack round trip": dlpack_round_trip,
        "np.asarray(OrtValue)": lambda: np.asarray(ortvalue()),
        "run_with_ort_values": lambda: session().run_with_ort_values(["Y"], {"X": ortvalue()}),
        "run with an OrtValue feed": lambda: session().run(None, {"X": ortvalue()}),
        "IOBinding into a preallocated OrtValue": iobinding_preallocated,
        "IOBinding get_outputs/copy_outputs_to_cpu": iobinding_outputs,
        "OrtDevice.make('cuda', 0) vendor": lambda: rt.OrtDevice.make("cuda", 0).device_vendor_id(),
        "OrtMemoryInfo fields": lambda: (lambda m: (m.name, int(m.device_id), int(m.mem_type), int(m.allocator_type)))(
            rt.OrtMemoryInfo("Cpu", rt.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, rt.OrtMemType.DEFAULT)),
        "OrtArenaCfg(dict)": lambda: (lambda c: (c.max_mem, c.arena_extend_strategy))(
            rt.OrtArenaCfg({"max_mem": 16, "arena_extend_strategy": 1})),
        "SparseTensor COO": sparse_coo,
        "SparseTensor CSR": sparse_csr,
        "optimized model with external initializers": optimized_model,
        "backend.prepare(enable_profiling=True)": backend_blocked,
        "backend.run": backend_run,
    }


def _call(probe: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", _summary(probe())
    except Exception as e:  # the exception's class name is what is compared (graft's derive from
        return "raises", type(e).__name__  # ValueError/RuntimeError as well, onnxruntime's do not)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="also print the probes that agree")
    args = parser.parse_args()
    print(f"graft {graft.__version__}, onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}, "
          f"Python {platform.python_version()}")
    mine, theirs = _probes(graft), _probes(onnxruntime)
    differ = 0
    for name in mine:
        a, b = _call(mine[name]), _call(theirs[name])
        same = a == b
        differ += not same
        if not same or args.all:
            print(f"{'same  ' if same else 'DIFFER'} {name}")
            if not same:
                print(f"         graft:       {a}")
                print(f"         onnxruntime: {b}")
    print(f"{len(mine)} calls, {len(mine) - differ} the same, {differ} differ")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
