"""register_custom_ops_library: a shared library built against graft's kernel API
(examples/custom_op) adds an op that sessions then run."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper

import graft

from .models import IR_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler to build the custom-op library")
    out = tmp_path_factory.mktemp("custom_op") / "libadd_scaled.so"
    # Built against graft's headers only: its graft symbols resolve to graft._C's when it loads.
    subprocess.run([compiler, "-std=c++20", "-O1", "-shared", "-fPIC", f"-I{ROOT}",
                    os.path.join(ROOT, "examples", "custom_op", "add_scaled.cc"), "-o", str(out)], check=True)
    return str(out)


def _model(alpha=0.5):
    node = helper.make_node("AddScaled", ["A", "B"], ["Y"], domain="com.example", alpha=alpha)
    graph = helper.make_graph([node], "custom", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3, 5])
                                                 for n in "AB"],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 5])])
    return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[
        helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)]).SerializeToString()


def test_a_registered_library_runs_its_op(library):
    a = np.arange(15, dtype=np.float32).reshape(3, 5)
    b = np.ones((3, 5), np.float32)
    so = graft.SessionOptions()
    so.register_custom_ops_library(library)
    so.register_custom_ops_library(library)  # twice is once
    (y,) = graft.InferenceSession(_model(), so).run(None, {"A": a, "B": b})
    np.testing.assert_array_equal(y, a + 0.5 * b)
    # Another SessionOptions naming the same library works too.
    other = graft.SessionOptions()
    other.register_custom_ops_library(library)
    np.testing.assert_array_equal(graft.InferenceSession(_model(2.0), other).run(None, {"A": a, "B": b})[0], a + 2 * b)


def test_the_kernel_reports_bad_input_by_node(library):
    so = graft.SessionOptions()
    so.register_custom_ops_library(library)
    sess = graft.InferenceSession(_model(), so)
    with pytest.raises(graft.InvalidArgument, match="input 'A'"):
        sess.run(None, {"A": np.ones((2, 5), np.float32), "B": np.ones((3, 5), np.float32)})


def test_a_missing_library_is_named(tmp_path):
    with pytest.raises(RuntimeError, match="no library at .*nothing.so"):
        graft.SessionOptions().register_custom_ops_library(str(tmp_path / "nothing.so"))
    bad = tmp_path / "bad.so"
    bad.write_text("not a library")
    with pytest.raises(RuntimeError, match="cannot load"):
        graft.SessionOptions().register_custom_ops_library(str(bad))
