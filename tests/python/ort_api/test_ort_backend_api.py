"""graft.backend with onnxruntime.backend's interface and option rules."""

import numpy as np
import pytest

import graft
import graft.backend as backend

from .models import mul_model

X = np.array([[1, 2], [3, 4], [5, 6]], np.float32)


def test_prepare_and_run_from_a_proto_bytes_or_path(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(mul_model().SerializeToString())
    for source in (mul_model(), mul_model().SerializeToString(), str(path)):
        np.testing.assert_array_equal(backend.prepare(source).run(X)[0], X * X)
    np.testing.assert_array_equal(backend.run(str(path), [X])[0], X * X)


def test_safe_options_are_taken_and_file_writing_ones_refused(tmp_path):
    rep = backend.prepare(mul_model(), intra_op_num_threads=1,
                          graph_optimization_level=graft.GraphOptimizationLevel.ORT_DISABLE_ALL, unknown_knob=3)
    assert rep.session.get_session_options().intra_op_num_threads == 1
    for option in ({"optimized_model_filepath": str(tmp_path / "x.onnx")}, {"enable_profiling": True},
                   {"profile_file_prefix": str(tmp_path / "p")}):
        with pytest.raises(RuntimeError, match="not permitted"):
            backend.prepare(mul_model(), **option)
    assert not list(tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="not permitted"):
        rep.run(X, terminate=True)
    np.testing.assert_array_equal(rep.run(X, only_execute_path_to_fetches=True, other=1)[0], X * X)


def test_devices():
    assert backend.supports_device("CPU")
    assert backend.supports_device("CUDA") == (graft.get_device() == "GPU")
    with pytest.raises(RuntimeError, match="not on 'FPGA'"):
        backend.prepare(mul_model(), "FPGA")


def test_example_models(tmp_path, monkeypatch):
    from sklearn.datasets import load_iris

    from graft import datasets

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    np.testing.assert_array_equal(backend.run(datasets.get_example("mul_1.onnx"), [X])[0], X * X)
    features, labels = load_iris(return_X_y=True)
    label, probabilities = backend.prepare(datasets.get_example("logreg_iris.onnx")).run(
        features.astype(np.float32))
    assert (label == labels).mean() > 0.9  # a fitted classifier, not a placeholder
    assert all(abs(sum(row.values()) - 1) < 1e-5 for row in probabilities)
    with pytest.raises(FileNotFoundError, match="mul_1.onnx"):
        datasets.get_example("nothing.onnx")


def test_onnxruntime_example_classifier_gives_onnxruntime_results():
    # onnxruntime's own example model (from its wheel): a LinearClassifier whose coefficients
    # outnumber classes x features, a Normalizer and a ZipMap.
    import onnxruntime as ort
    from onnxruntime import datasets as ort_datasets

    path = ort_datasets.get_example("logreg_iris.onnx")
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    mine = graft.InferenceSession(path).run(None, {"float_input": x})
    theirs = ort.InferenceSession(path).run(None, {"float_input": x})
    np.testing.assert_array_equal(mine[0], theirs[0])
    for row, expected in zip(mine[1], theirs[1]):
        assert row.keys() == expected.keys() and all(type(v) is float for v in row.values())
        np.testing.assert_allclose([row[k] for k in sorted(row)], [expected[k] for k in sorted(expected)], rtol=1e-5,
                                   atol=1e-7)
