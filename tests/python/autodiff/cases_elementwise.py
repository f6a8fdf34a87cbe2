"""Gradient-check cases for the rules in autodiff/rules/ (elementwise ops)."""

from __future__ import annotations

import itertools

import numpy as np
from onnx import TensorProto

from gradcheck import Case

CASES: list[Case] = []


def _away_from_zero(rng, shape):
    return rng.choice([-1, 1], shape) * rng.uniform(0.2, 2, shape)


def _positive(rng, shape):
    return rng.uniform(0.5, 2, shape)


def _in_order(*makers):
    """Data for the differentiable inputs in declaration order: the i-th gets makers[i]."""
    calls = itertools.count()
    return lambda rng, shape: makers[next(calls) % len(makers)](rng, shape)


def _fixed(value):
    return lambda rng, shape: np.full(shape, value)


# Unary math and activations: (op, attrs, data, opset, label).
_UNARY = [
    ("Sqrt", {}, _positive, 18, ""),
    ("Exp", {}, None, 18, ""),
    ("Log", {}, _positive, 18, ""),
    ("Erf", {}, None, 18, ""),
    ("Abs", {}, _away_from_zero, 18, ""),
    ("Reciprocal", {}, _away_from_zero, 18, ""),
    ("Sin", {}, None, 18, ""),
    ("Cos", {}, None, 18, ""),
    ("Tanh", {}, None, 18, ""),
    ("Sigmoid", {}, None, 18, ""),
    ("LeakyRelu", {}, _away_from_zero, 18, "default alpha"),
    ("LeakyRelu", {"alpha": 0.3}, _away_from_zero, 18, "alpha"),
    ("Elu", {}, _away_from_zero, 18, "default alpha"),
    ("Elu", {"alpha": 0.5}, _away_from_zero, 18, "alpha"),
    ("Selu", {}, _away_from_zero, 18, "defaults"),
    ("Selu", {"alpha": 1.5, "gamma": 0.8}, _away_from_zero, 18, "alpha gamma"),
    ("Celu", {"alpha": 2.0}, _away_from_zero, 18, ""),
    ("Softplus", {}, None, 18, ""),
    ("Softsign", {}, _away_from_zero, 18, ""),
    ("HardSigmoid", {}, lambda rng, s: rng.uniform(-4, 4, s), 18, "defaults"),
    ("HardSigmoid", {"alpha": 0.5, "beta": 0.3}, lambda rng, s: rng.uniform(-2, 2, s), 18, "alpha beta"),
    ("HardSwish", {}, lambda rng, s: rng.uniform(-5, 5, s), 18, ""),
    ("Mish", {}, lambda rng, s: rng.uniform(-4, 4, s), 18, ""),
    ("ThresholdedRelu", {}, lambda rng, s: rng.uniform(-3, 3, s), 18, "default alpha"),
    ("ThresholdedRelu", {"alpha": -0.5}, lambda rng, s: rng.uniform(-3, 3, s), 18, "alpha"),
    ("Gelu", {}, lambda rng, s: rng.uniform(-4, 4, s), 20, "exact"),
    ("Gelu", {"approximate": "tanh"}, lambda rng, s: rng.uniform(-4, 4, s), 20, "tanh"),
    ("Sign", {}, _away_from_zero, 18, ""),
    ("Floor", {}, lambda rng, s: rng.uniform(-3, 3, s), 18, ""),
    ("Ceil", {}, lambda rng, s: rng.uniform(-3, 3, s), 18, ""),
    ("Round", {}, lambda rng, s: rng.uniform(-3, 3, s), 18, ""),
    # Models before opset 13 are converted to 18 first.
    ("Sqrt", {}, _positive, 6, "opset 6"),
    ("LeakyRelu", {"alpha": 0.2}, _away_from_zero, 6, "opset 6"),
    ("Floor", {}, lambda rng, s: rng.uniform(-3, 3, s), 6, "opset 6"),
]
# onnxruntime 1.31 has no float64 kernel for these (Celu is float-only in the spec).
_NO_ORT_DOUBLE = {("Erf", ""), ("Celu", ""), ("Gelu", "exact")}
for op, attrs, data, opset, label in _UNARY:
    CASES.append(Case(op, {"x": (3, 4)}, attrs, data=data, opset=opset, label=label,
                      onnxruntime=(op, label) not in _NO_ORT_DOUBLE))

CASES += [
    Case("Pow", {"a": (3, 4), "b": (3, 4)}, data=_positive, label="same shape"),
    Case("Pow", {"a": (2, 3, 4), "b": (4,)}, data=_positive, label="broadcast exponent"),
    Case("Pow", {"a": (4,), "b": (3, 1)}, data=_positive, label="broadcast both"),
    Case("Pow", {"a": (3, 4), "b": np.array([2.0, 3.0, 1.0, 0.0])}, label="fixed exponents, negative base"),
    Case("Pow", {"a": (3, 4), "b": np.array([2, 3, -1, 0], np.int64)}, data=_away_from_zero,
         label="integer exponent"),
    Case("Pow", {"a": (3, 4), "b": (4,)}, data=_positive, opset=13, label="opset 13"),
    Case("Pow", {"a": (3, 4), "b": (4,)}, data=_positive, opset=7, label="opset 7"),
    # Clip: x passes where min < x < max; the bounds get the gradient where they bind.
    Case("Clip", {"x": (3, 4), "min": np.array(-0.5), "max": np.array(0.7)}, label="fixed bounds"),
    Case("Clip", {"x": (4, 5), "min": (), "max": ()},
         data=_in_order(lambda rng, s: rng.uniform(-2, 2, s), _fixed(-0.4), _fixed(0.6)), label="bounds"),
    Case("Clip", {"x": (4, 5), "min": ()}, data=_in_order(lambda rng, s: rng.uniform(-2, 2, s), _fixed(0.3)),
         label="min only"),
    Case("Clip", {"x": (3, 4), "min": (), "max": ()},
         data=_in_order(lambda rng, s: rng.standard_normal(s), _fixed(0.5), _fixed(-0.5)), label="min above max"),
    Case("Clip", {"x": (3, 4), "min": np.array(-0.5), "max": np.array(0.7)}, opset=11, label="opset 11"),
    Case("PRelu", {"x": (2, 3, 4), "slope": (2, 3, 4)}, data=_away_from_zero, label="same shape"),
    Case("PRelu", {"x": (2, 3, 4), "slope": (3, 1)}, data=_away_from_zero, label="broadcast slope"),
    Case("PRelu", {"x": (2, 3, 4), "slope": (1,)}, data=_away_from_zero, label="shared slope"),
    Case("PRelu", {"x": (2, 3, 4), "slope": (4,)}, data=_away_from_zero, opset=7, label="opset 7"),
    Case("PRelu", {"x": (2, 3, 4), "slope": (3, 1)}, data=_away_from_zero, opset=9, label="opset 9"),
    Case("Mean", {"a": (3, 4), "b": (4,), "c": (3, 1)}, label="three inputs broadcast", onnxruntime=False),
    Case("Mean", {"a": (3, 4)}, label="one input", onnxruntime=False),
    Case("Where", {"cond": np.array([[True, False, True, False]] * 3), "a": (3, 4), "b": (3, 4)},
         label="same shape"),
    Case("Where", {"cond": np.array([True, False, False, True]), "a": (3, 1), "b": ()}, label="broadcast"),
    Case("Cast", {"x": (3, 4)}, {"to": TensorProto.DOUBLE}, label="double"),
    Case("Cast", {"x": (3, 4)}, {"to": TensorProto.DOUBLE}, opset=6, label="opset 6"),
    Case("CastLike", {"x": (3, 4), "like": np.zeros((1,), np.float64)}, label="double"),
]
for op in ("Min", "Max"):
    CASES += [
        Case(op, {"a": (3, 4), "b": (3, 4)}, label="two inputs"),
        Case(op, {"a": (3, 4), "b": (4,), "c": (3, 1)}, label="three inputs broadcast"),
        Case(op, {"a": (2, 3)}, label="one input"),
        Case(op, {"a": (3, 4), "b": np.array([0.0, 0.5, -0.5, 1.0])}, label="fixed operand"),
        Case(op, {"a": (3, 4), "b": (4,)}, opset=8, label="opset 8"),
    ]
