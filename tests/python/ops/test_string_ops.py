"""CPU string kernels (StringNormalizer, StringSplit, StringConcat, RegexFullMatch) against the
ONNX reference implementation and Python's str methods."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import graft

ERRORS = (graft.Fail, graft.InvalidArgument, graft.NotImplemented)


def strings(*values, shape=None):
    arr = np.array(list(values), dtype=object)
    return arr.reshape(shape) if shape is not None else arr


def make_model(op, inputs, outputs, attrs=None, opset=20):
    node = helper.make_node(op, list(inputs), [name for name, _ in outputs], **(attrs or {}))
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype)
                                                  if v.dtype != object else TensorProto.STRING,
                                                  list(v.shape))
                    for n, v in inputs.items()]
    graph_outputs = [helper.make_tensor_value_info(name, dtype, None) for name, dtype in outputs]
    graph = helper.make_graph([node], "g", graph_inputs, graph_outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    return model


def run_graft(model, inputs):
    return graft.InferenceSession(model.SerializeToString()).run(None, inputs)


def assert_same(actual, expected):
    for a, e in zip(actual, expected):
        e = np.asarray(e)
        if e.dtype.kind == "U":
            e = e.astype(object)
        assert a.dtype == e.dtype, (a.dtype, e.dtype)
        assert a.shape == e.shape, (a.shape, e.shape)
        np.testing.assert_array_equal(a, e)


def check(op, inputs, outputs, attrs=None, opset=20):
    model = make_model(op, inputs, outputs, attrs, opset)
    expected = ReferenceEvaluator(model).run(None, inputs)
    actual = run_graft(model, inputs)
    assert_same(actual, expected)
    return actual


def fails(op, inputs, outputs, attrs=None, opset=20):
    with pytest.raises(ERRORS):
        run_graft(make_model(op, inputs, outputs, attrs, opset), inputs)


STR = TensorProto.STRING


# --- StringNormalizer ------------------------------------------------------------------------


WORDS = strings("Monday", "tuesday", "WEDNESDAY", "monday", "Thursday", "", "MONDAY")
STOPWORDS = ["monday", "Thursday"]


def normalize(words, action, case_sensitive):
    """The specification: drop stop words (ignoring case unless case_sensitive), change case."""
    stops = set(STOPWORDS) if case_sensitive else {w.lower() for w in STOPWORDS}
    kept = [w for w in words if (w if case_sensitive else w.lower()) not in stops]
    change = {"NONE": lambda w: w, "LOWER": str.lower, "UPPER": str.upper}[action]
    return [change(w) for w in kept] or [""]


@pytest.mark.parametrize("action", ["NONE", "LOWER", "UPPER"])
@pytest.mark.parametrize("case_sensitive", [0, 1])
@pytest.mark.parametrize("two_d", [False, True])
def test_string_normalizer(action, case_sensitive, two_d):
    x = WORDS.reshape(1, -1) if two_d else WORDS
    attrs = {"case_change_action": action, "is_case_sensitive": case_sensitive,
             "stopwords": STOPWORDS}
    model = make_model("StringNormalizer", {"x": x}, [("y", STR)], attrs, 10)
    expected = strings(*normalize(list(WORDS), action, case_sensitive))
    assert_same(run_graft(model, {"x": x}), [expected.reshape(1, -1) if two_d else expected])
    if case_sensitive or action != "NONE":
        # The reference agrees where it neither drops empty strings nor compares stop words
        # with their original case.
        x = x[x != ""].reshape(1, -1) if two_d else x[x != ""]
        check("StringNormalizer", {"x": x}, [("y", STR)], attrs, opset=10)


def test_string_normalizer_all_dropped_and_unicode():
    x = strings("a", "A", shape=(1, 2))
    actual = run_graft(make_model("StringNormalizer", {"x": x}, [("y", STR)],
                                  {"stopwords": ["a"]}, 10), {"x": x})
    assert_same(actual, [strings("", shape=(1, 1))])
    x = strings("Straße", "ÉCOLE", "δΑ")
    upper = run_graft(make_model("StringNormalizer", {"x": x}, [("y", STR)],
                                 {"case_change_action": "UPPER"}, 10), {"x": x})
    assert_same(upper, [strings("STRAßE", "ÉCOLE", "ΔΑ")])
    lower = run_graft(make_model("StringNormalizer", {"x": x}, [("y", STR)],
                                 {"case_change_action": "LOWER"}, 10), {"x": x})
    assert_same(lower, [strings("straße", "école", "δα")])


def test_string_normalizer_bad_shape():
    fails("StringNormalizer", {"x": strings("a", "b", "c", "d", shape=(2, 2))}, [("y", STR)],
          opset=10)
    fails("StringNormalizer", {"x": strings("a")}, [("y", STR)],
          {"case_change_action": "TITLE"}, opset=10)


# --- StringSplit -----------------------------------------------------------------------------


SPLIT_INPUTS = strings("a,b,,c", "", ",", "one", "x,y", "  a b  c ", "a\tb\nc", shape=(7,))


@pytest.mark.parametrize("delimiter", [None, ",", "", " ", ",,", "b"])
@pytest.mark.parametrize("maxsplit", [None, 0, 1, 2])
def test_string_split(delimiter, maxsplit):
    attrs = {}
    if delimiter is not None:
        attrs["delimiter"] = delimiter
    if maxsplit is not None:
        attrs["maxsplit"] = maxsplit
    check("StringSplit", {"x": SPLIT_INPUTS}, [("y", STR), ("z", TensorProto.INT64)], attrs)


def test_string_split_shapes():
    x = strings("a b", "c", "d e f", "", shape=(2, 2))
    y, z = check("StringSplit", {"x": x}, [("y", STR), ("z", TensorProto.INT64)])
    assert y.shape == (2, 2, 3)
    x = np.zeros((0, 3), dtype=object)
    y, z = run_graft(make_model("StringSplit", {"x": x}, [("y", STR), ("z", TensorProto.INT64)]),
                     {"x": x})
    assert y.shape == (0, 3, 0) and z.shape == (0, 3)


def test_string_split_python_semantics():
    cases = ["  lead and trail  ", "x,,y,", "no-delim", "a  b"]
    x = strings(*cases)
    for delimiter, maxsplit in ((None, None), (",", 1), (None, 1)):
        attrs = {k: v for k, v in (("delimiter", delimiter), ("maxsplit", maxsplit))
                 if v is not None}
        y, z = run_graft(make_model("StringSplit", {"x": x}, [("y", STR), ("z", TensorProto.INT64)],
                                    attrs), {"x": x})
        for row, count, s in zip(y, z, cases):
            pieces = s.split(delimiter, -1 if maxsplit is None else maxsplit)
            assert count == len(pieces)
            assert list(row[:count]) == pieces and all(p == "" for p in row[count:])


# --- StringConcat ----------------------------------------------------------------------------


@pytest.mark.parametrize("shapes", [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 4)), ((), (2,)),
                                    ((), ())])
def test_string_concat(shapes):
    a_shape, b_shape = shapes
    a = np.array([f"a{i}é" for i in range(int(np.prod(a_shape)))], object).reshape(a_shape)
    b = np.array([f"_{i}" if i % 2 else "" for i in range(int(np.prod(b_shape)))],
                 object).reshape(b_shape)
    check("StringConcat", {"a": a, "b": b}, [("y", STR)])


def test_string_concat_bad_broadcast():
    fails("StringConcat", {"a": strings("a", "b"), "b": strings("a", "b", "c")}, [("y", STR)])


# --- RegexFullMatch --------------------------------------------------------------------------


PATTERNS = [
    r"www\.[\w.-]+\.\bcom\b",
    r"(\W|^)[\w.\-]{0,25}@(yahoo|gmail)\.com(\W|$)",
    r"a|ab",
    r"[0-9]+(\.[0-9]*)?",
    r"[[:alpha:]]+\d?",
    r"[]a]+",
    r"x*",
    r"(?P<word>\w+)-(\d+)",
    r"\Aab\z",
    r"\Qa.b\E.",
    r"(?i)hello",
    r"..",
]
TEXTS = strings("www.google.com", "www.facebook.com", "www.bbc.co.uk", "user@gmail.com",
                "ab", "a", "12.5", "12.", ".5", "abc", "abc1", "]a]", "", "xxx", "word-12",
                "a.bc", "a.b", "HeLLo", "hello!", "éa", "é")


@pytest.mark.parametrize("pattern", PATTERNS)
def test_regex_full_match(pattern):
    model = make_model("RegexFullMatch", {"x": TEXTS}, [("y", TensorProto.BOOL)],
                       {"pattern": pattern})
    actual = run_graft(model, {"x": TEXTS})[0]
    # Python's re agrees with RE2 on these patterns once the RE2-only forms are spelled out.
    py = pattern.replace(r"\z", r"\Z")
    py = py.replace(r"\Qa.b\E", re.escape("a.b")).replace("[[:alpha:]]", "[^\\W\\d_]")
    expected = np.array([re.fullmatch(py, t, re.ASCII) is not None for t in TEXTS])
    if pattern == "[[:alpha:]]+\\d?":
        expected = np.array([re.fullmatch("[A-Za-z]+\\d?", t) is not None for t in TEXTS])
    np.testing.assert_array_equal(actual, expected)
    assert actual.shape == TEXTS.shape and actual.dtype == np.bool_


def test_regex_full_match_reference_and_shape():
    x = strings("www.google.com", "www.onnx.ai", "x", "wwwww.com", shape=(2, 2))
    check("RegexFullMatch", {"x": x}, [("y", TensorProto.BOOL)],
          {"pattern": r"www\.[\w.-]+\.\bcom\b"})


@pytest.mark.parametrize("pattern", [r"(", r"\pL+", r"(?s).", r"a{2,1}"])
def test_regex_full_match_bad_pattern(pattern):
    fails("RegexFullMatch", {"x": strings("a")}, [("y", TensorProto.BOOL)], {"pattern": pattern})
