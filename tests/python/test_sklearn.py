"""scikit-learn models converted by skl2onnx: graft against onnxruntime.

Models are trained on the datasets bundled with scikit-learn (no download). Labels must match
exactly; probabilities and regression values to 1e-5 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # noqa: E402
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,  # noqa: E402
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.svm import SVC, SVR  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

import graft  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

ORT_IR_VERSION = 10  # onnxruntime reads models up to IR version 13


def _dataset(loader):
    x, y = loader(return_X_y=True)
    return x.astype(np.float32), y


IRIS = _dataset(load_iris)
CANCER = _dataset(load_breast_cancer)
DIABETES = _dataset(load_diabetes)


def _convert(model, x, options=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onx = skl2onnx.to_onnx(model, x[:1], options=options)
    onx.ir_version = min(onx.ir_version, ORT_IR_VERSION)
    return onx.SerializeToString()


def _assert_same(actual, expected, what):
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), what
        for a, e in zip(actual, expected):
            assert sorted(a) == sorted(e), what
            np.testing.assert_allclose([a[k] for k in e], [e[k] for k in e], rtol=1e-5, atol=1e-6,
                                       err_msg=what)
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (what, actual.dtype, expected.dtype)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def compare(model, x, options=None):
    """Converts `model`, runs it on `x` in onnxruntime and graft and compares every output."""
    onx = _convert(model, x, options)
    ort = onnxruntime.InferenceSession(onx, providers=["CPUExecutionProvider"])
    feeds = {ort.get_inputs()[0].name: x}
    expected = ort.run(None, feeds)
    actual = graft.InferenceSession(onx).run(None, feeds)
    assert len(actual) == len(expected)
    for out, a, e in zip(ort.get_outputs(), actual, expected):
        _assert_same(a, e, f"{type(model).__name__} output {out.name}")
    return actual


CLASSIFIERS = [
    ("logistic_regression", lambda: make_pipeline(StandardScaler(),
                                                  LogisticRegression(max_iter=500))),
    ("logistic_regression_raw", lambda: LogisticRegression(max_iter=1000)),
    ("random_forest", lambda: RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0)),
    ("gradient_boosting", lambda: GradientBoostingClassifier(n_estimators=10, max_depth=3,
                                                             random_state=0)),
    ("decision_tree", lambda: DecisionTreeClassifier(max_depth=6, random_state=0)),
    ("svc_probability", lambda: make_pipeline(StandardScaler(),
                                              SVC(probability=True, random_state=0))),
    ("svc", lambda: make_pipeline(StandardScaler(), SVC())),
    ("svc_linear", lambda: make_pipeline(StandardScaler(), SVC(kernel="linear"))),
    ("knn", lambda: KNeighborsClassifier(n_neighbors=5)),
]


@pytest.mark.parametrize("name,make", CLASSIFIERS, ids=[c[0] for c in CLASSIFIERS])
@pytest.mark.parametrize("data", ["iris", "cancer"])
def test_classifier(name, make, data):
    x, y = IRIS if data == "iris" else CANCER
    if name == "logistic_regression_raw" and data == "cancer":
        x, y = x[:, :8], y  # few features, so the unscaled solver converges quickly
    model = make().fit(x, y)
    labels, probabilities = compare(model, x)
    np.testing.assert_array_equal(labels, model.predict(x))
    assert len(probabilities) == len(x)


def test_classifier_without_zipmap():
    x, y = IRIS
    model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=1).fit(x, y)
    compare(model, x, options={id(model): {"zipmap": False}})


def test_classifier_string_labels():
    x, y = IRIS
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    for model in (LogisticRegression(max_iter=1000),
                  DecisionTreeClassifier(max_depth=4, random_state=0)):
        labels, _ = compare(model.fit(x, names), x)
        np.testing.assert_array_equal(labels, model.predict(x))


REGRESSORS = [
    ("linear_regression", lambda: LinearRegression()),
    ("random_forest", lambda: RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0)),
    ("gradient_boosting", lambda: GradientBoostingRegressor(n_estimators=20, max_depth=3,
                                                            random_state=0)),
    ("decision_tree", lambda: DecisionTreeRegressor(max_depth=6, random_state=0)),
    ("svr", lambda: SVR(C=50.0)),
    ("scaled_svr", lambda: make_pipeline(StandardScaler(), SVR(kernel="poly", degree=2, C=50.0))),
    ("knn", lambda: KNeighborsRegressor(n_neighbors=4)),
]


@pytest.mark.parametrize("name,make", REGRESSORS, ids=[r[0] for r in REGRESSORS])
def test_regressor(name, make):
    x, y = DIABETES
    model = make().fit(x, y)
    (prediction,) = compare(model, x)
    np.testing.assert_allclose(prediction.ravel(), model.predict(x), rtol=1e-3, atol=1e-2)


def test_one_hot_encoder():
    rng = np.random.default_rng(0)
    strings = np.array([["red", "s"], ["green", "m"], ["blue", "l"], ["red", "m"]], dtype=object)
    encoder = OneHotEncoder().fit(strings)
    test = strings[rng.integers(0, len(strings), 12)]
    compare(encoder, test)
    numbers = rng.integers(0, 5, (20, 3)).astype(np.int64)
    compare(OneHotEncoder(handle_unknown="ignore").fit(numbers[:10]), numbers)
