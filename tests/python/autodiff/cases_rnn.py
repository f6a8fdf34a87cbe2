"""Gradient-check cases for the recurrent rules in autodiff/rules/rnn.cc: RNN, GRU and LSTM."""

from __future__ import annotations

import numpy as np

from gradcheck import Case

CASES: list[Case] = []

SEQ, BATCH, INPUT, HIDDEN = 3, 2, 3, 4
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def small(rng, shape):
    # Weights of a moderate size keep the gates away from saturation.
    return 0.5 * rng.standard_normal(shape)


def inputs(op, dirs=1, layout=0, bias=True, state=False, lens=None, peepholes=False):
    g = GATES[op]
    x = (BATCH, SEQ, INPUT) if layout else (SEQ, BATCH, INPUT)
    h = (BATCH, dirs, HIDDEN) if layout else (dirs, BATCH, HIDDEN)
    spec = {"x": x, "w": (dirs, g * HIDDEN, INPUT), "r": (dirs, g * HIDDEN, HIDDEN)}
    if bias or state or lens is not None or peepholes:
        spec["b"] = (dirs, 2 * g * HIDDEN)
    if state or lens is not None or peepholes:
        spec["lens"] = np.array(lens if lens is not None else [SEQ] * BATCH, np.int32)
        spec["h0"] = h
    if op == "LSTM" and (state or peepholes):
        spec["c0"] = h
    if peepholes:
        spec["p"] = (dirs, 3 * HIDDEN)
    return spec


def case(op, label, attrs=None, outputs=2, **kw):
    dirs = 2 if (attrs or {}).get("direction") == "bidirectional" else 1
    attrs = {"hidden_size": HIDDEN, **(attrs or {})}
    return Case(op, inputs(op, dirs, attrs.get("layout", 0), **kw), attrs, num_outputs=outputs, data=small,
                # onnxruntime has no float64 RNN, GRU or LSTM: checked numerically only.
                onnxruntime=False,
                label=label)


for op in ("LSTM", "GRU", "RNN"):
    last = 3 if op == "LSTM" else 2
    CASES += [
        case(op, "forward", outputs=last),
        case(op, "reverse, no bias", {"direction": "reverse"}, bias=False),
        case(op, "bidirectional, initial state", {"direction": "bidirectional"}, outputs=last, state=True),
        case(op, "layout 1 bidirectional", {"direction": "bidirectional", "layout": 1}, outputs=last, state=True),
        case(op, "Y only", outputs=1),
        case(op, "sequence_lens bidirectional", {"direction": "bidirectional"}, outputs=last, lens=[2, 3]),
        case(op, "sequence_lens reverse layout 1", {"direction": "reverse", "layout": 1}, outputs=last,
             lens=[3, 1]),
    ]
CASES += [
    case("GRU", "linear_before_reset", {"linear_before_reset": 1}, state=True),
    case("GRU", "linear_before_reset bidirectional", {"linear_before_reset": 1, "direction": "bidirectional"},
         lens=[1, 3]),
    case("LSTM", "peepholes bidirectional", {"direction": "bidirectional"}, outputs=3, peepholes=True),
    case("LSTM", "peepholes sequence_lens layout 1", {"layout": 1}, outputs=3, peepholes=True, lens=[2, 3]),
    case("LSTM", "default activations given", {"activations": ["Sigmoid", "Tanh", "Tanh"]}),
]
# Older models are converted to opset 18 (layout appears in opset 14); opset 22 adds only types.
CASES += [Case(op, inputs(op), {"hidden_size": HIDDEN}, opset=opset, num_outputs=2, data=small, onnxruntime=False,
               label=f"opset {opset}") for op in GATES for opset in (7, 22)]
