"""Gradient-check cases for the rules in autodiff/rules/ (nn ops)."""

from __future__ import annotations

import numpy as np

from gradcheck import Case

CASES: list[Case] = []


def i64(*values) -> np.ndarray:
    return np.array(values, np.int64)


def positive(rng, shape):
    return rng.uniform(0.5, 2, shape)


# Softmax family.
for op in ("Softmax", "LogSoftmax"):
    CASES += [Case(op, {"x": (3, 4, 5)}, label="last axis"),
              Case(op, {"x": (3, 4, 5)}, {"axis": 1}, label="middle axis"),
              Case(op, {"x": (2, 6)}, {"axis": 0}, opset=13, label="opset 13")]

# Conv: 1-D and 2-D, strides, pads, dilations, groups, auto_pad. (onnxruntime has no float64 Conv
# or ConvTranspose, so these cases are checked numerically only.)
CASES += [
    Case("Conv", {"x": (2, 3, 7), "w": (4, 3, 3), "b": (4,)}, label="1-D"),
    Case("Conv", {"x": (2, 2, 9), "w": (3, 2, 2)}, {"strides": [2], "pads": [1, 2], "dilations": [2]},
         label="1-D strides pads dilations"),
    Case("Conv", {"x": (2, 4, 6, 5), "w": (6, 2, 3, 2), "b": (6,)},
         {"group": 2, "strides": [2, 1], "pads": [1, 0, 0, 1]}, label="2-D groups"),
    Case("Conv", {"x": (1, 3, 5, 5), "w": (3, 1, 3, 3)}, {"group": 3, "strides": [2, 2], "auto_pad": "SAME_UPPER"},
         label="depthwise SAME_UPPER"),
    Case("Conv", {"x": (1, 2, 7, 6), "w": (3, 2, 2, 3)},
         {"strides": [3, 2], "dilations": [2, 1], "pads": [0, 1, 1, 0]}, label="2-D remainders"),
    Case("Conv", {"x": (1, 2, 6, 5), "w": (2, 2, 3, 2), "b": (2,)}, {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
         label="SAME_LOWER"),
    Case("Conv", {"x": (2, 2, 5, 4), "w": (3, 2, 2, 2)}, {"auto_pad": "VALID"}, opset=13, label="VALID opset 13"),
    Case("Conv", {"x": np.random.default_rng(0).standard_normal((2, 4, 5, 5)), "w": (6, 2, 3, 3), "b": (6,)},
         {"group": 2, "strides": [2, 2]}, label="weights only"),
]

# ConvTranspose: the adjoint of Conv, with output_padding and output_shape.
CASES += [
    Case("ConvTranspose", {"x": (2, 3, 4), "w": (3, 2, 3), "b": (2,)}, label="1-D"),
    Case("ConvTranspose", {"x": (1, 2, 4), "w": (2, 3, 2)},
         {"strides": [2], "pads": [1, 0], "output_padding": [1], "dilations": [2]}, label="1-D output_padding"),
    Case("ConvTranspose", {"x": (1, 4, 3, 3), "w": (4, 3, 2, 2), "b": (6,)},
         {"group": 2, "strides": [2, 1], "pads": [0, 1, 1, 0]}, label="2-D groups"),
    Case("ConvTranspose", {"x": (1, 2, 3, 3), "w": (2, 2, 3, 3)},
         {"strides": [2, 2], "output_shape": [6, 6], "auto_pad": "SAME_UPPER"}, label="output_shape SAME_UPPER"),
    Case("ConvTranspose", {"x": (2, 2, 3, 2), "w": (2, 1, 2, 3)}, {"strides": [2, 3], "auto_pad": "SAME_LOWER"},
         opset=13, label="SAME_LOWER opset 13"),
    Case("ConvTranspose", {"x": (1, 2, 4), "w": (2, 2, 4)}, {"strides": [2], "auto_pad": "SAME_UPPER"},
         label="1-D SAME_UPPER"),
]

# Pooling. (onnxruntime has no float64 kernel for AveragePool and the global pools.)
CASES += [
    Case("MaxPool", {"x": (2, 3, 6, 6)}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
         label="overlapping windows"),
    Case("MaxPool", {"x": (2, 3, 8)}, {"kernel_shape": [2], "strides": [2]}, opset=13, label="1-D opset 13"),
    Case("MaxPool", {"x": (1, 2, 5, 5)}, {"kernel_shape": [2, 2]}, num_outputs=2, label="Indices output"),
    Case("MaxPool", {"x": (1, 2, 7, 6)}, {"kernel_shape": [2, 2], "strides": [2, 2], "dilations": [2, 1],
                                          "ceil_mode": 1}, label="dilations ceil_mode"),
    Case("MaxPool", {"x": (1, 2, 4, 5)}, {"kernel_shape": [2, 2], "storage_order": 1}, num_outputs=2,
         label="column-major Indices"),
    Case("AveragePool", {"x": (2, 3, 8)}, {"kernel_shape": [3], "strides": [2]}, label="1-D"),
    Case("AveragePool", {"x": (2, 2, 6, 5)}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
         label="pads excluded"),
    Case("AveragePool", {"x": (2, 2, 6, 5)}, {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1],
                                              "count_include_pad": 1}, label="pads included"),
    Case("AveragePool", {"x": (1, 2, 7, 7)}, {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 0, 1],
                                              "ceil_mode": 1}, label="ceil_mode pads excluded"),
    Case("AveragePool", {"x": (1, 2, 7, 6)}, {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [1, 0, 0, 1],
                                              "ceil_mode": 1, "count_include_pad": 1},
         label="ceil_mode pads included, last window dropped"),
    Case("AveragePool", {"x": (1, 2, 7, 7)}, {"kernel_shape": [2, 2], "strides": [2, 1], "dilations": [2, 2]},
         opset=19, label="dilations"),
    Case("AveragePool", {"x": (1, 2, 5, 6)}, {"kernel_shape": [2, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
         label="SAME_UPPER"),
    Case("AveragePool", {"x": (1, 2, 5, 7)}, {"kernel_shape": [3, 2], "strides": [2, 3], "auto_pad": "SAME_LOWER",
                                              "count_include_pad": 1}, label="SAME_LOWER pads included"),
    Case("GlobalAveragePool", {"x": (2, 3, 4, 5)}),
    Case("GlobalAveragePool", {"x": (2, 3, 4)}, label="1-D"),
    Case("GlobalMaxPool", {"x": (2, 3, 4, 5)}),
    Case("GlobalMaxPool", {"x": (2, 3, 4)}, label="1-D"),
]

# Normalization.
stats = {"mean": np.array([0.1, -0.2, 0.3]), "var": np.array([0.5, 1.5, 2.0])}
CASES += [
    Case("BatchNormalization", {"x": (2, 3, 4, 5), "scale": (3,), "b": (3,), "mean": (3,), "var": (3,)},
         data=positive, label="inference"),
    Case("BatchNormalization", {"x": (2, 3, 4, 5), "scale": (3,), "b": (3,), **stats}, {"training_mode": 1},
         num_outputs=3, label="training"),
    Case("BatchNormalization", {"x": (4, 3), "scale": (3,), "b": (3,), "mean": (3,), "var": (3,)},
         {"training_mode": 1, "momentum": 0.8}, num_outputs=3, data=positive, label="training running stats"),
    Case("BatchNormalization", {"x": np.random.default_rng(0).standard_normal((2, 3, 4)), "scale": (3,), "b": (3,),
                                **stats}, {"training_mode": 1}, num_outputs=3, label="training params only"),
    Case("LayerNormalization", {"x": (3, 4, 5), "scale": (5,), "b": (5,)}, label="last axis"),
    Case("LayerNormalization", {"x": (3, 4, 5), "scale": (4, 5)}, {"axis": 1, "epsilon": 1e-3}, label="axis 1 no bias"),
    Case("LayerNormalization", {"x": (2, 3, 4), "scale": (1, 4), "b": (3, 1)}, {"axis": -2, "stash_type": 11},
         num_outputs=3, label="broadcast params with statistics outputs"),
    Case("InstanceNormalization", {"x": (2, 3, 5), "scale": (3,), "b": (3,)}, label="1-D"),
    Case("InstanceNormalization", {"x": (2, 3, 3, 4), "scale": (3,), "b": (3,)}, {"epsilon": 1e-3}, label="2-D"),
    Case("GroupNormalization", {"x": (2, 4, 3, 2), "scale": (4,), "b": (4,)}, {"num_groups": 2}, opset=21,
         label="opset 21"),
    Case("GroupNormalization", {"x": (2, 6, 5), "scale": (6,), "b": (6,)}, {"num_groups": 3, "epsilon": 1e-3},
         opset=21, label="1-D"),
]

# Losses: labels (and fixed weights) are not differentiated.
labels = i64(0, 3, 1, 3)
labels_3d = np.array([[0, 2, 1], [2, 2, 0]], np.int64)
class_weights = np.array([0.5, 1.0, 2.0, 1.5])
for op in ("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"):
    x = "scores" if op.startswith("Softmax") else "input"
    for reduction in ("mean", "sum", "none"):
        CASES += [Case(op, {x: (4, 4), "labels": labels}, {"reduction": reduction}, label=reduction),
                  Case(op, {x: (4, 4), "labels": labels, "weights": class_weights},
                       {"reduction": reduction, "ignore_index": 3}, label=f"{reduction} weights ignore_index")]
    CASES += [
        Case(op, {x: (2, 3, 3), "labels": labels_3d}, {"ignore_index": -1}, label="extra axis"),
        Case(op, {x: (2, 3, 3), "labels": labels_3d, "weights": (3,)}, {"ignore_index": 1}, data=positive,
             label="weights differentiated"),
        Case(op, {x: (2, 3, 3), "labels": labels_3d, "weights": (3,)}, {"reduction": "sum"}, data=positive,
             label="weights differentiated sum"),
        Case(op, {x: (4, 4), "labels": labels.astype(np.int32)}, {"reduction": "sum"}, opset=13, label="int32 labels"),
    ]
CASES.append(Case("SoftmaxCrossEntropyLoss", {"scores": (4, 4), "labels": labels}, num_outputs=2,
                  label="log_prob output"))

NO_FLOAT64_IN_ONNXRUNTIME = {"Conv", "ConvTranspose", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                             "LayerNormalization", "InstanceNormalization"}
for case in CASES:
    case.onnxruntime = case.op not in NO_FLOAT64_IN_ONNXRUNTIME
