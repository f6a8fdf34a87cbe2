"""CPU ai.onnx.ml kernels against the ONNX reference implementation.

Where the reference lacks an op (CastMap, CategoryMapper, ZipMap, LabelEncoder-1) or follows a
different convention than the one graft shares with onnxruntime (binary tree and SVM scores,
*_as_tensor attributes), the expected values are written out or taken from onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import graft

ML = "ai.onnx.ml"
RNG = np.random.default_rng(0)
ERRORS = (graft.Fail, graft.InvalidArgument, graft.NotImplemented)
NP_TO_ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
              np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32,
              np.dtype(np.int16): TensorProto.INT16, np.dtype(object): TensorProto.STRING,
              np.dtype(np.float16): TensorProto.FLOAT16}


def _input_info(name, value):
    if isinstance(value, onnx.TypeProto):
        return helper.make_value_info(name, value)
    return helper.make_tensor_value_info(name, NP_TO_ONNX[value.dtype], list(value.shape))


def ml_model(op, inputs, n_outputs=1, ml_opset=1, **attrs):
    """A one-node ai.onnx.ml model. `inputs` maps names to arrays, or to a TypeProto for a map
    input (the feed is then given separately). Output types come from ONNX shape inference."""
    outputs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op, list(inputs), outputs, domain=ML, **attrs)
    graph = helper.make_graph([node], "g", [_input_info(n, v) for n, v in inputs.items()],
                              [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                               for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                    helper.make_opsetid(ML, ml_opset)])
    model.ir_version = 10
    inferred = onnx.shape_inference.infer_shapes(model)
    for out, found in zip(model.graph.output, inferred.graph.output):
        if found.type.WhichOneof("value") is not None:
            out.type.CopyFrom(found.type)
    return model


def run_graft(model, feeds):
    return graft.InferenceSession(model.SerializeToString()).run(None, feeds)


def run_reference(model, feeds):
    return ReferenceEvaluator(model).run(None, feeds)


def run_ort(model, feeds):
    model = onnx.ModelProto.FromString(model.SerializeToString())
    untyped = TensorProto.UNDEFINED
    outputs = [o for o in model.graph.output if o.type.tensor_type.elem_type == untyped]
    if outputs:
        # onnxruntime needs every output typed; ONNX's inference leaves some ml ops untyped.
        for out, value in zip(model.graph.output, run_graft(model, feeds)):
            if out in outputs:
                out.type.tensor_type.elem_type = NP_TO_ONNX[np.asarray(value).dtype]
    sess = onnxruntime.InferenceSession(model.SerializeToString(),
                                        providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, check_dtype=True):
    actual, expected = np.asarray(actual), np.asarray(expected)
    if expected.dtype.kind == "U":
        expected = expected.astype(object)
    if check_dtype:
        assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(actual, expected)


def check(op, inputs, n_outputs=1, ml_opset=1, oracle=run_reference, rtol=1e-5, float_out=False,
          **attrs):
    """Runs the node in graft and in `oracle`; compares every output. `float_out`: the op's
    numeric outputs are tensor(float), which the reference computes in the input's type."""
    model = ml_model(op, inputs, n_outputs, ml_opset, **attrs)
    expected = oracle(model, inputs)
    actual = run_graft(model, inputs)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        e = np.asarray(e)
        if float_out and e.dtype.kind == "f":
            e = e.astype(np.float32)
        assert_close(a, e, rtol=rtol)
    return actual


def data(shape, dtype=np.float32, limit=20):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return RNG.integers(-limit, limit, shape).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


def map_type(key, value):
    return helper.make_map_type_proto(key, helper.make_tensor_type_proto(value, None))


NUMERIC = [np.float32, np.float64, np.int64, np.int32]


# --- feature preparation -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", NUMERIC + [object])
def test_array_feature_extractor_types(dtype):
    x = data((3, 5), np.int64 if dtype is object else dtype)
    if dtype is object:
        x = x.astype(str).astype(object)
    check("ArrayFeatureExtractor", {"x": x, "i": np.array([4, 0, 2], np.int64)})


@pytest.mark.parametrize("shape,index", [((2, 3, 4), [[1, 3]]), ((6,), [5, 1]), ((4, 3), [2]),
                                         ((2, 5), [-1, 0])])
def test_array_feature_extractor_shapes(shape, index):
    check("ArrayFeatureExtractor", {"x": data(shape), "i": np.array(index, np.int64)})


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("threshold", [0.0, 0.5, -3.0])
def test_binarizer(dtype, threshold):
    x = data((4, 5), dtype)
    if dtype in (np.float32, np.float64):
        x[0, 0] = threshold
    check("Binarizer", {"x": x}, threshold=threshold)


def test_feature_vectorizer():
    inputs = {"a": data((3, 2)), "b": data((3, 3), np.int64), "c": data((3, 1), np.float64)}
    check("FeatureVectorizer", inputs, float_out=True, inputdimensions=[2, 3, 1])
    check("FeatureVectorizer", inputs, float_out=True, inputdimensions=[1, 4, 3])
    model = ml_model("FeatureVectorizer", {"a": data((3, 4), np.int32)}, inputdimensions=[4])
    (y,) = run_graft(model, {"a": np.arange(12, dtype=np.int32).reshape(3, 4)})
    assert_close(y, np.arange(12, dtype=np.float32).reshape(3, 4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_imputer_float(dtype):
    x = data((5, 3), dtype)
    x[1, 2] = x[3, 0] = np.nan
    check("Imputer", {"x": x}, imputed_value_floats=[1.5, -2.0, 7.0], replaced_value_float=np.nan)
    check("Imputer", {"x": x}, imputed_value_floats=[9.0], replaced_value_float=np.nan)
    x[2, 1] = 0.0
    check("Imputer", {"x": x}, imputed_value_floats=[4.0, 5.0, 6.0])


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_imputer_int(dtype):
    x = data((4, 3), dtype)
    x[0, 1] = x[2, 2] = -1
    check("Imputer", {"x": x}, imputed_value_int64s=[10, 20, 30], replaced_value_int64=-1)


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
@pytest.mark.parametrize("dtype", NUMERIC)
def test_normalizer(norm, dtype):
    x = data((4, 5), dtype)
    if norm == "MAX":
        x = np.abs(x)  # the reference divides by max(|x|), the specification by max(x)
    x[2] = 0
    model = ml_model("Normalizer", {"x": x}, norm=norm)
    # The reference computes in the input's type; give it doubles.
    expected = run_reference(model, {"x": x.astype(np.float64)})[0].astype(np.float32)
    assert_close(run_graft(model, {"x": x})[0], expected)


def test_normalizer_max_of_signed_values():
    x = np.array([[-4.0, 2.0, 1.0], [-1.0, -2.0, -0.5]], np.float32)
    (y,) = run_graft(ml_model("Normalizer", {"x": x}, norm="MAX"), {"x": x})
    assert_close(y, x / x.max(axis=1, keepdims=True))


@pytest.mark.parametrize("dtype", NUMERIC)
def test_scaler(dtype):
    x = data((4, 3), dtype)
    for offset, scale in [([0.5, -1.0, 2.0], [2.0, 0.25, -1.0]), ([1.5], [3.0])]:
        model = ml_model("Scaler", {"x": x}, offset=offset, scale=scale)
        expected = ((x.astype(np.float64) - np.array(offset)) * np.array(scale)).astype(np.float32)
        assert_close(run_graft(model, {"x": x})[0], expected)
        if dtype == np.float32:  # the reference keeps integer inputs' type
            assert_close(run_graft(model, {"x": x})[0], run_reference(model, {"x": x})[0])


def test_one_hot_encoder():
    x = np.array([[1, 5, 3], [3, 9, 1]], np.int64)
    check("OneHotEncoder", {"x": x}, cats_int64s=[1, 3, 5, 7])
    check("OneHotEncoder", {"x": x.astype(np.float64)}, cats_int64s=[3, 1])
    check("OneHotEncoder", {"x": x[0].astype(np.int32)}, cats_int64s=[5, 3, 1])
    s = np.array([["a", "b"], ["c", "a"]], dtype=object)
    check("OneHotEncoder", {"x": s}, cats_strings=["a", "b", "c", "d"])


def test_dict_vectorizer():
    model = ml_model("DictVectorizer", {"x": map_type(TensorProto.STRING, TensorProto.FLOAT)},
                     string_vocabulary=["a", "c", "b", "z"])
    feed = {"x": {"a": np.float32(4), "c": np.float32(8), "q": np.float32(1)}}
    (y,) = run_graft(model, feed)
    assert_close(y, np.array([[4, 8, 0, 0]], np.float32))
    assert_close(y.ravel(), run_reference(model, {"x": {"a": 4.0, "c": 8.0}})[0].astype(np.float32))
    model = ml_model("DictVectorizer", {"x": map_type(TensorProto.INT64, TensorProto.STRING)},
                     int64_vocabulary=[3, 1, 2])
    (y,) = run_graft(model, {"x": {1: "one", 2: "two"}})
    assert_close(y, np.array([["", "one", "two"]], dtype=object))


def test_cast_map():
    feed = {"x": {4: "7.5", 1: "-2", 2: "3"}}
    string_map = {"x": map_type(TensorProto.INT64, TensorProto.STRING)}
    for cast_to, expected in [("TO_FLOAT", np.array([[-2, 3, 7.5]], np.float32)),
                              ("TO_INT64", np.array([[-2, 3, 7]], np.int64)),
                              ("TO_STRING", np.array([["-2", "3", "7.5"]], dtype=object))]:
        model = ml_model("CastMap", string_map, cast_to=cast_to)
        assert_close(run_graft(model, feed)[0], expected)
    model = ml_model("CastMap", string_map, cast_to="TO_FLOAT", map_form="SPARSE", max_map=6)
    assert_close(run_graft(model, feed)[0], np.array([[0, -2, 3, 0, 7.5, 0]], np.float32))
    float_map = {"x": map_type(TensorProto.INT64, TensorProto.FLOAT)}
    feed = {"x": {3: 1.25, 0: -4.0}}
    for cast_to in ["TO_FLOAT", "TO_INT64", "TO_STRING"]:
        for form in ["DENSE", "SPARSE"]:
            model = ml_model("CastMap", float_map, cast_to=cast_to, map_form=form, max_map=5)
            assert_close(run_graft(model, feed)[0], run_ort(model, feed)[0])


def test_category_mapper():
    cats = {"cats_strings": ["cat", "dog", "cow"], "cats_int64s": [1, 7, 3]}
    s = np.array([["dog", "bird"], ["cow", "cat"]], dtype=object)
    model = ml_model("CategoryMapper", {"x": s}, default_int64=-9, **cats)
    assert_close(run_graft(model, {"x": s})[0], np.array([[7, -9], [3, 1]], np.int64))
    i = np.array([3, 4, 1], np.int64)
    model = ml_model("CategoryMapper", {"x": i}, default_string="none", **cats)
    assert_close(run_graft(model, {"x": i})[0], np.array(["cow", "none", "cat"], dtype=object))


# --- LabelEncoder --------------------------------------------------------------------------


def test_label_encoder_v1():
    classes = {"classes_strings": ["a", "b", "c"]}
    s = np.array(["c", "x", "a"], dtype=object)
    model = ml_model("LabelEncoder", {"x": s}, default_int64=-5, **classes)
    assert_close(run_graft(model, {"x": s})[0], np.array([2, -5, 0], np.int64))
    i = np.array([[1, 3], [0, -1]], np.int64)
    model = ml_model("LabelEncoder", {"x": i}, default_string="?", **classes)
    assert_close(run_graft(model, {"x": i})[0], np.array([["b", "?"], ["a", "?"]], dtype=object))


@pytest.mark.parametrize("keys,values,x", [
    ({"keys_strings": ["a", "b", "c"]}, {"values_int64s": [5, 6, 7], "default_int64": 42},
     np.array(["a", "z", "c", "b"], dtype=object)),
    ({"keys_int64s": [3, 1, 9]}, {"values_strings": ["three", "one", "nine"]},
     np.array([[1, 3], [2, 9]], np.int64)),
    ({"keys_floats": [0.5, -1.0, 2.0]}, {"values_floats": [10.0, 20.0, 30.0], "default_float": 7.5},
     np.array([2.0, 0.5, 3.0, -1.0], np.float32)),
    ({"keys_floats": [0.5, 2.0]}, {"values_int64s": [1, 2]}, np.array([2.0, 4.0], np.float32)),
])
@pytest.mark.parametrize("opset", [2, 4])
def test_label_encoder_lists(keys, values, x, opset):
    check("LabelEncoder", {"x": x}, ml_opset=opset, **keys, **values)


def _tensor(name, dtype, values):
    return helper.make_tensor(name, dtype, (len(values),), values)


@pytest.mark.parametrize("key_type,keys,x", [
    (TensorProto.INT16, [4, -2, 8], np.array([8, 4, 5, -2], np.int16)),
    (TensorProto.INT32, [4, -2, 8], np.array([[8, 4], [5, -2]], np.int32)),
    (TensorProto.DOUBLE, [0.25, np.nan, 3.0], np.array([3.0, 0.3, 0.25], np.float64)),
    (TensorProto.STRING, ["x", "y", "z"], np.array(["z", "w", "x"], dtype=object)),
])
@pytest.mark.parametrize("value_type,vals,default", [
    (TensorProto.INT16, [1, 2, 3], [-7]),
    (TensorProto.DOUBLE, [0.5, 1.5, 2.5], [9.0]),
    (TensorProto.STRING, ["p", "q", "r"], ["none"]),
])
def test_label_encoder_tensors(key_type, keys, x, value_type, vals, default):
    check("LabelEncoder", {"x": x}, ml_opset=4, keys_tensor=_tensor("k", key_type, keys),
          values_tensor=_tensor("v", value_type, vals),
          default_tensor=_tensor("d", value_type, default))


def test_label_encoder_defaults_v4():
    x = np.array([1, 2, 5], np.int64)
    for values, expected in [({"values_tensor": _tensor("v", TensorProto.INT32, [10, 20])},
                              np.array([10, 20, -1], np.int32)),
                             ({"values_tensor": _tensor("v", TensorProto.FLOAT, [1.5, 2.5])},
                              np.array([1.5, 2.5, -0.0], np.float32)),
                             ({"values_strings": ["a", "b"]},
                              np.array(["a", "b", "_Unused"], object))]:
        model = ml_model("LabelEncoder", {"x": x}, ml_opset=4, keys_int64s=[1, 2], **values)
        assert_close(run_graft(model, {"x": x})[0], expected)


def test_label_encoder_nan_key():
    x = np.array([np.nan, 1.0, -np.nan], np.float32)
    model = ml_model("LabelEncoder", {"x": x}, ml_opset=4, keys_floats=[1.0, np.nan],
                     values_strings=["one", "nan"])
    assert_close(run_graft(model, {"x": x})[0], np.array(["nan", "one", "nan"], object))


def test_label_encoder_last_key_wins():
    x = np.array(["a", "b"], dtype=object)
    model = ml_model("LabelEncoder", {"x": x}, ml_opset=4, keys_strings=["a", "b", "a"],
                     values_int64s=[1, 2, 3])
    assert_close(run_graft(model, {"x": x})[0], np.array([3, 2], np.int64))


# --- linear models -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("post", ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"])
def test_linear_classifier_multiclass(dtype, post):
    x = data((6, 4), dtype, limit=3)
    check("LinearClassifier", {"x": x}, n_outputs=2, float_out=True,
          coefficients=data((3 * 4,)).tolist(), intercepts=[0.5, -0.25, 0.0],
          classlabels_ints=[3, 5, 9], post_transform=post)


def test_linear_classifier_strings_and_binary():
    x = data((5, 3))
    check("LinearClassifier", {"x": x}, n_outputs=2, coefficients=data((2 * 3,)).tolist(),
          intercepts=[0.1, -0.1], classlabels_strings=["no", "yes"], post_transform="LOGISTIC")
    # One coefficient row with two labels: a binary model. Its scores follow onnxruntime,
    # [1 - s, s] (the reference writes [-s, s]), and [logistic(-s), logistic(s)] under LOGISTIC.
    for post in ["NONE", "LOGISTIC"]:
        check("LinearClassifier", {"x": x}, n_outputs=2, oracle=run_ort,
              coefficients=[0.5, -1.0, 2.0], intercepts=[0.25], classlabels_ints=[0, 1],
              post_transform=post)
    check("LinearClassifier", {"x": x}, n_outputs=2, coefficients=[0.5, -1.0, 2.0],
          intercepts=[0.25], classlabels_ints=[0, 1], post_transform="LOGISTIC")


@pytest.mark.parametrize("targets", [1, 3])
def test_linear_regressor(targets):
    x = data((5, 4))
    check("LinearRegressor", {"x": x}, coefficients=data((targets * 4,)).tolist(),
          intercepts=data((targets,)).tolist(), targets=targets)
    # A 1-D input is one row: the result is [1, targets], as in onnxruntime.
    model = ml_model("LinearRegressor", {"x": x[0]}, coefficients=data((targets * 4,)).tolist(),
                     intercepts=data((targets,)).tolist(), targets=targets)
    (y,) = run_graft(model, {"x": x[0]})
    assert_close(y, run_reference(model, {"x": x[0]})[0].reshape(1, targets))


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.int32])
def test_linear_regressor_types(dtype):
    # The reference computes in the input's type (integer coefficients for integer input).
    x = data((5, 4), dtype)
    w, b = data((2, 4)), data((2,))
    model = ml_model("LinearRegressor", {"x": x}, coefficients=w.ravel().tolist(),
                     intercepts=b.tolist(), targets=2)
    expected = (x.astype(np.float64) @ w.T.astype(np.float64) + b).astype(np.float32)
    assert_close(run_graft(model, {"x": x})[0], expected)


# --- SVM -----------------------------------------------------------------------------------


def svm_attrs(classes, features, per_class, kernel, rng, proba=False):
    n_sv = sum(per_class)
    attrs = dict(classlabels_ints=list(range(10, 10 + classes)), vectors_per_class=per_class,
                 support_vectors=rng.standard_normal(n_sv * features).astype(np.float32).tolist(),
                 coefficients=rng.standard_normal((classes - 1) * n_sv).astype(np.float32).tolist(),
                 rho=rng.standard_normal(classes * (classes - 1) // 2).astype(np.float32).tolist(),
                 kernel_type=kernel, kernel_params=[0.3, 0.5, 2.0])
    if proba:
        pairs = classes * (classes - 1) // 2
        attrs["prob_a"] = (-1 - rng.random(pairs)).astype(np.float32).tolist()
        attrs["prob_b"] = (0.1 * rng.standard_normal(pairs)).astype(np.float32).tolist()
    return attrs


@pytest.mark.parametrize("kernel", ["LINEAR", "POLY", "RBF", "SIGMOID"])
@pytest.mark.parametrize("classes", [2, 3, 4])
def test_svm_classifier_svc(kernel, classes):
    rng = np.random.default_rng(classes)
    x = data((7, 3))
    attrs = svm_attrs(classes, 3, [2, 3, 1, 2][:classes], kernel, rng)
    check("SVMClassifier", {"x": x}, n_outputs=2, **attrs)
    check("SVMClassifier", {"x": x}, n_outputs=2, oracle=run_ort, post_transform="LOGISTIC",
          **attrs)


@pytest.mark.parametrize("classes", [2, 3, 5])
def test_svm_classifier_probabilities(classes):
    rng = np.random.default_rng(7 + classes)
    x = data((9, 4))
    attrs = svm_attrs(classes, 4, [3] * classes, "RBF", rng, proba=True)
    check("SVMClassifier", {"x": x}, n_outputs=2, oracle=run_ort, **attrs)


def test_svm_classifier_linear_mode():
    # The reference labels a three-class liblinear model 0 or 1; onnxruntime takes the top class.
    x = data((6, 3), np.float64)
    check("SVMClassifier", {"x": x}, n_outputs=2, oracle=run_ort, classlabels_ints=[1, 2, 3],
          coefficients=data((9,)).tolist(), rho=[0.5], kernel_type="LINEAR",
          kernel_params=[0.1, 0.0, 1.0])


@pytest.mark.parametrize("kernel", ["LINEAR", "POLY", "RBF", "SIGMOID"])
def test_svm_regressor(kernel):
    x = data((6, 3))
    check("SVMRegressor", {"x": x}, n_supports=4, support_vectors=data((12,)).tolist(),
          coefficients=data((4,)).tolist(), rho=[0.25], kernel_type=kernel,
          kernel_params=[0.2, 1.0, 3.0])
    check("SVMRegressor", {"x": x}, coefficients=data((3,)).tolist(), rho=[1.5])
    check("SVMRegressor", {"x": x}, n_supports=4, support_vectors=data((12,)).tolist(),
          coefficients=data((4,)).tolist(), rho=[0.25], kernel_type=kernel, one_class=1,
          kernel_params=[0.2, 1.0, 3.0])


# --- trees ---------------------------------------------------------------------------------


MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


def random_forest(rng, n_trees, n_features, n_targets, depth=3, modes=MODES, weights_per_leaf=1,
                  single_target=None):
    """Trees in the opset-1 encoding: a dict of nodes_* lists and a list of (tree, node, target,
    weight) leaf weights. Node ids are shuffled within each tree."""
    nodes = {k: [] for k in ["treeids", "nodeids", "featureids", "modes", "values", "truenodeids",
                             "falsenodeids", "missing_value_tracks_true"]}
    leaves = []
    for tree in range(n_trees):
        entries = []

        def build(level):
            index = len(entries)
            entries.append(None)
            if level == depth or (level > 0 and rng.random() < 0.25):
                entries[index] = ("LEAF", 0, 0.0, 0, 0)
                return index
            node = [str(rng.choice(modes)), int(rng.integers(n_features)),
                    float(np.float32(rng.standard_normal() * 0.7)), None, None]
            node[3] = build(level + 1)
            node[4] = build(level + 1)
            entries[index] = tuple(node)
            return index

        build(0)
        ids = rng.permutation(len(entries))
        for i, (mode, feature, value, t, f) in enumerate(entries):
            nodes["treeids"].append(tree)
            nodes["nodeids"].append(int(ids[i]))
            nodes["featureids"].append(feature)
            nodes["modes"].append(mode)
            nodes["values"].append(value)
            nodes["truenodeids"].append(int(ids[t]) if mode != "LEAF" else 0)
            nodes["falsenodeids"].append(int(ids[f]) if mode != "LEAF" else 0)
            nodes["missing_value_tracks_true"].append(int(rng.integers(2)))
            if mode == "LEAF":
                targets = rng.choice(n_targets, size=min(weights_per_leaf, n_targets),
                                     replace=False)
                for target in targets:
                    target = single_target if single_target is not None else int(target)
                    leaves.append((tree, int(ids[i]), target,
                                   float(np.float32(rng.standard_normal()))))
    return nodes, leaves


def legacy_attrs(nodes, leaves, prefix):
    attrs = {f"nodes_{k}": v for k, v in nodes.items()}
    attrs[f"{prefix}_treeids"] = [l[0] for l in leaves]
    attrs[f"{prefix}_nodeids"] = [l[1] for l in leaves]
    attrs[f"{prefix}_ids"] = [l[2] for l in leaves]
    attrs[f"{prefix}_weights"] = [l[3] for l in leaves]
    return attrs


def tree_input(rng, nodes, n, n_features, dtype=np.float32):
    x = rng.standard_normal((n, n_features)).astype(dtype)
    # Hit some thresholds exactly, so EQ/NEQ/LEQ/LT differ.
    for r in range(0, n, 3):
        k = int(rng.integers(len(nodes["values"])))
        x[r, nodes["featureids"][k]] = nodes["values"][k]
    return x


@pytest.mark.parametrize("aggregate", ["SUM", "AVERAGE", "MIN", "MAX"])
@pytest.mark.parametrize("targets", [1, 3])
def test_tree_ensemble_regressor(aggregate, targets):
    rng = np.random.default_rng(hash((aggregate, targets)) % 1000)
    # Every leaf feeds every target so MIN/MAX are defined for each.
    nodes, leaves = random_forest(rng, 4, 5, targets, weights_per_leaf=targets)
    x = tree_input(rng, nodes, 20, 5)
    for base in ([], rng.standard_normal(targets).astype(np.float32).tolist()):
        attrs = legacy_attrs(nodes, leaves, "target")
        if base:
            attrs["base_values"] = base
        check("TreeEnsembleRegressor", {"x": x}, n_targets=targets, aggregate_function=aggregate,
              **attrs)


@pytest.mark.parametrize("dtype", NUMERIC)
def test_tree_ensemble_regressor_types(dtype):
    rng = np.random.default_rng(3)
    nodes, leaves = random_forest(rng, 3, 4, 2, modes=["BRANCH_LEQ", "BRANCH_GT"])
    x = (tree_input(rng, nodes, 15, 4) * 3).astype(dtype)
    attrs = legacy_attrs(nodes, leaves, "target")
    if dtype in (np.float32, np.float64):
        check("TreeEnsembleRegressor", {"x": x}, n_targets=2, oracle=run_ort, **attrs)
    else:  # onnxruntime has no integer kernel: compare with the same values as floats
        model = ml_model("TreeEnsembleRegressor", {"x": x}, n_targets=2, **attrs)
        (y,) = run_graft(model, {"x": x})
        xf = x.astype(np.float32)
        assert_close(y, run_ort(ml_model("TreeEnsembleRegressor", {"x": xf}, n_targets=2, **attrs),
                                {"x": xf})[0])


def test_tree_ensemble_regressor_as_tensor():
    rng = np.random.default_rng(4)
    # Every leaf feeds both targets: onnxruntime adds base values only to targets a leaf reached.
    nodes, leaves = random_forest(rng, 3, 4, 2, weights_per_leaf=2)
    attrs = legacy_attrs(nodes, leaves, "target")
    values = attrs.pop("nodes_values")
    weights = attrs.pop("target_weights")
    attrs["nodes_values_as_tensor"] = helper.make_tensor("v", TensorProto.DOUBLE, (len(values),),
                                                         values)
    attrs["target_weights_as_tensor"] = helper.make_tensor("w", TensorProto.DOUBLE, (len(weights),),
                                                           weights)
    attrs["base_values_as_tensor"] = helper.make_tensor("b", TensorProto.DOUBLE, (2,), [0.5, -1.0])
    x = tree_input(rng, nodes, 12, 4, np.float64)
    check("TreeEnsembleRegressor", {"x": x}, ml_opset=3, n_targets=2, oracle=run_ort, **attrs)


@pytest.mark.parametrize("post", ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"])
def test_tree_ensemble_classifier_multiclass(post):
    rng = np.random.default_rng(11)
    nodes, leaves = random_forest(rng, 5, 4, 3, weights_per_leaf=3)
    x = tree_input(rng, nodes, 25, 4)
    attrs = legacy_attrs(nodes, leaves, "class")
    check("TreeEnsembleClassifier", {"x": x}, n_outputs=2, classlabels_int64s=[4, 5, 6],
          post_transform=post, base_values=[0.1, -0.2, 0.3], **attrs)
    check("TreeEnsembleClassifier", {"x": x}, n_outputs=2, classlabels_strings=["a", "b", "c"],
          post_transform=post, **attrs)


@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("post,base", [("NONE", []), ("LOGISTIC", [0.3]), ("NONE", [0.2]),
                                       ("LOGISTIC", [])])
def test_tree_ensemble_classifier_binary(positive, post, base):
    rng = np.random.default_rng(5)
    nodes, leaves = random_forest(rng, 4, 3, 1, single_target=0)
    if positive:
        leaves = [(t, n, c, abs(w) / 4) for t, n, c, w in leaves]
    attrs = legacy_attrs(nodes, leaves, "class")
    if base:
        attrs["base_values"] = base
    x = tree_input(rng, nodes, 30, 3)
    check("TreeEnsembleClassifier", {"x": x}, n_outputs=2, classlabels_int64s=[0, 1],
          post_transform=post, oracle=run_ort, **attrs)


def v5_attrs(rng, n_trees, n_features, n_targets, member_sets=False):
    """Random trees in the TreeEnsemble (opset 5) encoding."""
    nodes = {k: [] for k in ["featureids", "modes", "splits", "truenodeids", "trueleafs",
                             "falsenodeids", "falseleafs"]}
    leaf_targets, leaf_weights, roots, members = [], [], [], []

    def new_leaf():
        leaf_targets.append(int(rng.integers(n_targets)))
        leaf_weights.append(float(rng.standard_normal()))
        return len(leaf_targets) - 1

    def build(level):
        index = len(nodes["featureids"])
        mode = int(rng.integers(7 if member_sets else 6))
        nodes["featureids"].append(int(rng.integers(n_features)))
        nodes["modes"].append(mode)
        nodes["splits"].append(float(np.float32(rng.standard_normal())))
        if mode == 6:
            values = np.round(rng.standard_normal(3), 1)
            values[values == 0] = 0.5  # the reference reads a 0 member as the end of the set
            members.extend(values.astype(np.float32).tolist() + [np.nan])
        for side in ["true", "false"]:
            nodes[f"{side}nodeids"].append(0)
            nodes[f"{side}leafs"].append(0)
        for side in ["true", "false"]:
            if level == 2 or rng.random() < 0.3:
                nodes[f"{side}nodeids"][index], nodes[f"{side}leafs"][index] = new_leaf(), 1
            else:
                nodes[f"{side}nodeids"][index], nodes[f"{side}leafs"][index] = build(level + 1), 0
        return index

    for _ in range(n_trees):
        roots.append(build(0))
    dtype = TensorProto.DOUBLE
    attrs = dict(tree_roots=roots, n_targets=n_targets, leaf_targetids=leaf_targets,
                 nodes_featureids=nodes["featureids"], nodes_truenodeids=nodes["truenodeids"],
                 nodes_trueleafs=nodes["trueleafs"], nodes_falsenodeids=nodes["falsenodeids"],
                 nodes_falseleafs=nodes["falseleafs"],
                 nodes_modes=helper.make_tensor("m", TensorProto.UINT8, (len(nodes["modes"]),),
                                                nodes["modes"]),
                 nodes_splits=helper.make_tensor("s", dtype, (len(nodes["splits"]),),
                                                 nodes["splits"]),
                 leaf_weights=helper.make_tensor("w", dtype, (len(leaf_weights),), leaf_weights))
    if members:
        attrs["membership_values"] = helper.make_tensor("mv", TensorProto.FLOAT, (len(members),),
                                                        members)
    return attrs, nodes


@pytest.mark.parametrize("aggregate", [0, 1, 3])
@pytest.mark.parametrize("members", [False, True])
def test_tree_ensemble_v5(aggregate, members):
    rng = np.random.default_rng(21 + aggregate)
    # MAX with one target: every tree reaches it (the reference starts an unreached target at
    # the lowest float, onnxruntime and graft at 0).
    attrs, nodes = v5_attrs(rng, 4, 3, 1 if aggregate == 3 else 2, member_sets=members)
    x = rng.standard_normal((16, 3))
    x[::4, 0] = nodes["splits"][0]
    x = np.round(x, 1) if members else x
    for dtype in (np.float64, np.float32):
        if dtype == np.float32:
            attrs = dict(attrs)
            for k in ("nodes_splits", "leaf_weights"):
                t = attrs[k]
                attrs[k] = helper.make_tensor(t.name, TensorProto.FLOAT, t.dims,
                                              list(t.double_data))
        check("TreeEnsemble", {"x": x.astype(dtype)}, ml_opset=5, aggregate_function=aggregate,
              **attrs)


# --- ZipMap --------------------------------------------------------------------------------


def test_zip_map():
    x = data((3, 2))
    model = ml_model("ZipMap", {"x": x}, classlabels_int64s=[10, 20])
    (maps,) = run_graft(model, {"x": x})
    assert maps == [{10: x[i, 0], 20: x[i, 1]} for i in range(3)]
    model = ml_model("ZipMap", {"x": x}, classlabels_strings=["no", "yes"])
    (maps,) = run_graft(model, {"x": x})
    assert maps == [{"no": x[i, 0], "yes": x[i, 1]} for i in range(3)]
    model = ml_model("ZipMap", {"x": x[0]}, classlabels_strings=["no", "yes"])
    (maps,) = run_graft(model, {"x": x[0]})
    assert maps == [{"no": x[0, 0], "yes": x[0, 1]}]


# --- bad input -----------------------------------------------------------------------------


def _raises(model, feeds):
    with pytest.raises(ERRORS):
        run_graft(model, feeds)


def test_bad_inputs():
    x = data((2, 3))
    _raises(ml_model("ArrayFeatureExtractor", {"x": x, "i": np.array([3], np.int64)}),
            {"x": x, "i": np.array([3], np.int64)})
    _raises(ml_model("ZipMap", {"x": x}, classlabels_int64s=[1, 2]), {"x": x})
    _raises(ml_model("LinearClassifier", {"x": x}, 2, coefficients=[1.0, 2.0], intercepts=[0.0],
                     classlabels_ints=[0, 1]), {"x": x})
    _raises(ml_model("SVMRegressor", {"x": x}, coefficients=[1.0, 2.0], rho=[0.0]), {"x": x})
    _raises(ml_model("Normalizer", {"x": x}, norm="L3"), {"x": x})
    _raises(ml_model("Scaler", {"x": x}, offset=[1.0, 2.0], scale=[1.0]), {"x": x})
    _raises(ml_model("Imputer", {"x": x}, imputed_value_floats=[1.0, 2.0]), {"x": x})
    _raises(ml_model("OneHotEncoder", {"x": x}, cats_int64s=[0], zeros=0), {"x": x})
    _raises(ml_model("FeatureVectorizer", {"a": x, "b": data((3, 1))}, inputdimensions=[3, 1]),
            {"a": x, "b": data((3, 1))})
    s = np.array(["a"], dtype=object)
    _raises(ml_model("LabelEncoder", {"x": s}, ml_opset=2, keys_int64s=[1], values_int64s=[2]),
            {"x": s})
    _raises(ml_model("CastMap", {"x": map_type(TensorProto.INT64, TensorProto.STRING)},
                     map_form="SPARSE", max_map=2), {"x": {5: "1"}})
    _raises(ml_model("CastMap", {"x": map_type(TensorProto.INT64, TensorProto.STRING)}),
            {"x": {1: "not a number"}})
    _raises(ml_model("DictVectorizer", {"x": map_type(TensorProto.INT64, TensorProto.FLOAT)},
                     string_vocabulary=["a"]), {"x": {1: np.float32(2)}})


def test_bad_trees():
    x = data((2, 3))
    nodes = dict(nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 1, 0],
                 nodes_modes=["BRANCH_LEQ", "BRANCH_LEQ", "LEAF"], nodes_values=[0.0, 0.0, 0.0],
                 nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 2, 0],
                 target_ids=[0], target_nodeids=[2], target_treeids=[0], target_weights=[1.0])
    # Node 1 points back to the root: a cycle.
    _raises(ml_model("TreeEnsembleRegressor", {"x": x}, n_targets=1, **nodes), {"x": x})
    nodes["nodes_truenodeids"] = [1, 7, 0]
    _raises(ml_model("TreeEnsembleRegressor", {"x": x}, n_targets=1, **nodes), {"x": x})
    nodes["nodes_truenodeids"] = [1, 2, 0]
    nodes["nodes_featureids"] = [0, 5, 0]
    _raises(ml_model("TreeEnsembleRegressor", {"x": x}, n_targets=1, **nodes), {"x": x})
