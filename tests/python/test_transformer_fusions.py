"""The transformer fusions (ir/transforms/fuse_gelu, fuse_layer_norm, fuse_attention): node counts
before and after on small hand-built graphs, outputs against the unfused graph run by graft
(level 0) and onnxruntime, and a 2-layer BERT from both PyTorch exporters."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import graft

RNG = np.random.default_rng(7)


def _const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def _model(nodes, inputs, outputs, inits, opset):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _run(tmp_path, model, feeds, level):
    path = tmp_path / f"m{level}.onnx"
    onnx.save(model, path)
    opts = graft.SessionOptions()
    opts.graph_optimization_level = level
    opts.optimized_model_filepath = str(tmp_path / f"opt{level}.onnx")
    got = graft.InferenceSession(str(path), sess_options=opts).run(None, feeds)
    saved = onnx.load(opts.optimized_model_filepath)
    return got, [(n.domain, n.op_type) for n in saved.graph.node]


def _check(tmp_path, model, feeds, atol=1e-5):
    """Runs level 0 and level 2 through graft and the model through onnxruntime; returns the
    (domain, op) lists of the unfused and fused graphs."""
    plain, before = _run(tmp_path, model, feeds, 0)
    fused, after = _run(tmp_path, model, feeds, 2)
    path = tmp_path / "ort.onnx"
    onnx.save(model, path)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    for p, f, w in zip(plain, fused, want):
        np.testing.assert_allclose(f, p, rtol=1e-4, atol=atol)
        np.testing.assert_allclose(f, w, rtol=1e-4, atol=atol)
    return before, after


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# --- GELU ---------------------------------------------------------------------------------

def _gelu_erf(order):
    inits = [_const("sqrt2", np.sqrt(2.0)), _const("one", 1.0), _const("half", 0.5)]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Div", ["h", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"])]
    if order == "legacy":  # (h * a) * 0.5
        nodes += [helper.make_node("Mul", ["h", "a"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])]
    elif order == "dynamo":  # (0.5 * a) * h
        nodes += [helper.make_node("Mul", ["half", "a"], ["m"]), helper.make_node("Mul", ["h", "m"], ["y"])]
    else:  # (h * 0.5) * a
        nodes += [helper.make_node("Mul", ["h", "half"], ["m"]), helper.make_node("Mul", ["m", "a"], ["y"])]
    return nodes, inits


def _gelu_tanh(cube):
    inits = [_const("c", 0.044715), _const("k", np.sqrt(2 / np.pi)), _const("one", 1.0),
             _const("half", 0.5), _const("three", 3.0)]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"])]
    if cube == "pow":
        nodes.append(helper.make_node("Pow", ["h", "three"], ["h3"]))
    else:
        nodes += [helper.make_node("Mul", ["h", "h"], ["h2"]), helper.make_node("Mul", ["h", "h2"], ["h3"])]
    nodes += [helper.make_node("Mul", ["c", "h3"], ["t1"]), helper.make_node("Add", ["h", "t1"], ["t2"]),
              helper.make_node("Mul", ["t2", "k"], ["t3"]), helper.make_node("Tanh", ["t3"], ["t4"]),
              helper.make_node("Add", ["t4", "one"], ["t5"]), helper.make_node("Mul", ["h", "t5"], ["t6"]),
              helper.make_node("Mul", ["t6", "half"], ["y"])]
    return nodes, inits


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("form", ["legacy", "dynamo", "split_half", "pow", "mul"])
def test_gelu(tmp_path, form, opset):
    nodes, inits = _gelu_erf(form) if form in ("legacy", "dynamo", "split_half") else _gelu_tanh(form)
    inits.append(_const("w", RNG.standard_normal((8, 16))))
    model = _model(nodes, [_vi("x", [4, 8])], [_vi("y", [4, 16])], inits, opset)
    before, after = _check(tmp_path, model, {"x": RNG.standard_normal((4, 8)).astype(np.float32) * 2})
    domain = "" if opset >= 20 else "com.graft"
    assert len(before) == len(nodes)
    assert after == [("", "MatMul"), (domain, "Gelu")]
    gelu = [n for n in onnx.load(tmp_path / "opt2.onnx").graph.node if n.op_type == "Gelu"][0]
    approximate = [a.s for a in gelu.attribute if a.name == "approximate"]
    assert approximate == ([] if form in ("legacy", "dynamo", "split_half") else [b"tanh"])


def test_gelu_left_alone_when_a_step_is_read_elsewhere(tmp_path):
    nodes, inits = _gelu_erf("legacy")
    inits.append(_const("w", RNG.standard_normal((8, 16))))
    model = _model(nodes, [_vi("x", [4, 8])], [_vi("y", [4, 16]), _vi("e", [4, 16])], inits, 17)
    _, after = _check(tmp_path, model, {"x": RNG.standard_normal((4, 8)).astype(np.float32)})
    assert ("", "Erf") in after and ("com.graft", "Gelu") not in after


def test_gelu_left_alone_for_other_constants(tmp_path):
    nodes, inits = _gelu_erf("legacy")
    inits[0] = _const("sqrt2", 1.5)
    inits.append(_const("w", RNG.standard_normal((8, 16))))
    model = _model(nodes, [_vi("x", [4, 8])], [_vi("y", [4, 16])], inits, 17)
    _, after = _check(tmp_path, model, {"x": RNG.standard_normal((4, 8)).astype(np.float32)})
    assert ("", "Erf") in after


# --- LayerNormalization and SkipLayerNormalization ----------------------------------------

def _layer_norm_nodes(opset, square="pow", axis=-1):
    inits = [_const("two", 2.0), _const("eps", 1e-5), _const("gamma", RNG.standard_normal(16) + 1),
             _const("beta", RNG.standard_normal(16))]
    if opset >= 18:
        inits.append(_const("axes", [axis], np.int64))
        mean = lambda i, o: helper.make_node("ReduceMean", [i, "axes"], [o])  # noqa: E731
    else:
        mean = lambda i, o: helper.make_node("ReduceMean", [i], [o], axes=[axis])  # noqa: E731
    sq = (helper.make_node("Pow", ["d", "two"], ["sq"]) if square == "pow"
          else helper.make_node("Mul", ["d", "d"], ["sq"]))
    nodes = [mean("x", "mu"), helper.make_node("Sub", ["x", "mu"], ["d"]), sq, mean("sq", "var"),
             helper.make_node("Add", ["var", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["sd"]),
             helper.make_node("Div", ["d", "sd"], ["n"]), helper.make_node("Mul", ["n", "gamma"], ["g"]),
             helper.make_node("Add", ["g", "beta"], ["y"])]
    return nodes, inits


@pytest.mark.parametrize("opset,square", [(13, "pow"), (17, "mul"), (18, "pow")])
def test_layer_norm(tmp_path, opset, square):
    nodes, inits = _layer_norm_nodes(opset, square)
    model = _model(nodes, [_vi("x", [2, 3, 16])], [_vi("y", [2, 3, 16])], inits, opset)
    before, after = _check(tmp_path, model, {"x": RNG.standard_normal((2, 3, 16)).astype(np.float32) * 3 + 1})
    assert len(before) == 9
    assert after == [("" if opset >= 17 else "com.graft", "LayerNormalization")]


def test_layer_norm_left_alone_over_another_axis(tmp_path):
    nodes, inits = _layer_norm_nodes(17, axis=1)
    model = _model(nodes, [_vi("x", [2, 16, 16])], [_vi("y", [2, 16, 16])], inits, 17)
    _, after = _check(tmp_path, model, {"x": RNG.standard_normal((2, 16, 16)).astype(np.float32)})
    assert len(after) == 9


@pytest.mark.parametrize("sum_is_output", [False, True])
@pytest.mark.parametrize("skip_shape", [[2, 3, 16], [3, 16]])
def test_skip_layer_norm(tmp_path, sum_is_output, skip_shape):
    inits = [_const("gamma", RNG.standard_normal(16) + 1), _const("beta", RNG.standard_normal(16))]
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]),
             helper.make_node("LayerNormalization", ["s", "gamma", "beta"], ["ln"], epsilon=1e-6),
             helper.make_node("Relu", ["ln"], ["y"])]
    outputs = [_vi("y", [2, 3, 16])] + ([_vi("s", [2, 3, 16])] if sum_is_output else [])
    model = _model(nodes, [_vi("a", [2, 3, 16]), _vi("b", skip_shape)], outputs, inits, 17)
    feeds = {"a": RNG.standard_normal((2, 3, 16)).astype(np.float32),
             "b": RNG.standard_normal(skip_shape).astype(np.float32)}
    _, after = _check(tmp_path, model, feeds)
    assert after == [("com.graft", "SkipLayerNormalization"), ("", "Relu")]
    fused = onnx.load(tmp_path / "opt2.onnx").graph.node[0]
    assert list(fused.output) == (["ln", "s"] if sum_is_output else ["ln"])


def test_skip_layer_norm_leaves_a_bias_add_to_the_gemm(tmp_path):
    inits = [_const("gamma", np.ones(16)), _const("bias", RNG.standard_normal(16)),
             _const("w", RNG.standard_normal((16, 16)))]
    nodes = [helper.make_node("MatMul", ["a", "w"], ["p"]), helper.make_node("Add", ["p", "bias"], ["s"]),
             helper.make_node("LayerNormalization", ["s", "gamma"], ["y"])]
    model = _model(nodes, [_vi("a", [3, 16])], [_vi("y", [3, 16])], inits, 17)
    _, after = _check(tmp_path, model, {"a": RNG.standard_normal((3, 16)).astype(np.float32)})
    assert after == [("com.graft", "FusedMatMul"), ("", "LayerNormalization")]


# --- Attention ----------------------------------------------------------------------------

B, S, H, D = 2, 5, 3, 4


def _dims(nodes, out, of, index):
    """nodes computing `out` = Shape(of)[index] (an int, or a slice between two of the constants
    _attention_model defines), as exporters do."""
    shape = f"{out}_shape"
    nodes.append(helper.make_node("Shape", [of], [shape]))
    if isinstance(index, tuple):
        nodes.append(helper.make_node("Slice", [shape, *index], [out]))
    else:
        nodes += [helper.make_node("Gather", [shape, f"s{index}"], [f"{out}_scalar"], axis=0),
                  helper.make_node("Unsqueeze", [f"{out}_scalar", "i0"], [out])]


def _key_transpose(nodes, split):
    """The dynamo exporter's K^T of kh [B, H, S, D]: Reshape to [-1, S, D], Transpose [0, 2, 1],
    Reshape to the dims `split` names (B, H, D, S when right)."""
    _dims(nodes, "kd_s", "kh", ("im2", "im1"))
    _dims(nodes, "kd_d", "kh", ("im1", "imax"))
    _dims(nodes, "kd_b", "kh", 0)
    _dims(nodes, "kd_h", "kh", 1)
    nodes += [helper.make_node("Concat", ["im1", "kd_s", "kd_d"], ["k3_shape"], axis=0),
              helper.make_node("Reshape", ["kh", "k3_shape"], ["k3"]),
              helper.make_node("Transpose", ["k3"], ["k3t"], perm=[0, 2, 1]),
              helper.make_node("Concat", [f"kd_{n}" for n in split], ["k4_shape"], axis=0),
              helper.make_node("Reshape", ["k3t", "k4_shape"], ["kt"])]


def _attention_model(key_form="legacy", guard=True, scale_form="split", with_mask=True, shape_reader=False,
                     softmax_axis=-1, context_view=None):
    """The exported self-attention over q, k, v of shape [batch, S, H*D] and a [batch, 1, 1, S] mask.
    key_form: legacy (one Transpose), two_transposes, dynamo (Reshape / Transpose / Reshape, "dynamo_swapped"
    splitting the heads off in the wrong order); context_view: the legacy exporter's Reshape of the context
    to [B, -1, S, D] ("same", "zero_copy" with a 0 copying B) or a Reshape that moves elements ("moved")."""
    heads = _const("heads", [0, 0, H, D], np.int64)
    merge = _const("merge", [0, -1, H * D], np.int64)
    root = _const("root", 1 / np.sqrt(np.sqrt(D)))
    inits = [heads, merge, root, _const("sqrtd", np.sqrt(D)), _const("zero", 0.0)]
    inits += [_const(n, [v], np.int64) for n, v in (("im2", -2), ("im1", -1), ("i0", 0), ("imax", 2**63 - 1))]
    inits += [_const(f"s{v}", v, np.int64) for v in (0, 1, 2, 3)]
    nodes = []
    for name in "qkv":
        nodes.append(helper.make_node("Reshape", [name, "heads"], [f"{name}4"]))
    nodes += [helper.make_node("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
              helper.make_node("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3])]
    if key_form == "legacy":
        nodes.append(helper.make_node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]))
    elif key_form.startswith("dynamo"):
        nodes.append(helper.make_node("Transpose", ["k4"], ["kh"], perm=[0, 2, 1, 3]))
        _key_transpose(nodes, "bhds" if key_form == "dynamo" else "hbds")
    else:
        nodes += [helper.make_node("Transpose", ["k4"], ["kh"], perm=[0, 2, 1, 3]),
                  helper.make_node("Transpose", ["kh"], ["kt"], perm=[0, 1, 3, 2])]
    if scale_form == "split":  # both sides by 1 / D^(1/4), as both exporters write it
        nodes += [helper.make_node("Mul", ["qt", "root"], ["qs"]), helper.make_node("Mul", ["kt", "root"], ["ks"]),
                  helper.make_node("MatMul", ["qs", "ks"], ["scores"])]
        scaled = "scores"
    else:  # scores / sqrt(D)
        nodes += [helper.make_node("MatMul", ["qt", "kt"], ["raw"]),
                  helper.make_node("Div", ["raw", "sqrtd"], ["scores"])]
        scaled = "scores"
    if with_mask:
        nodes.append(helper.make_node("Add", [scaled, "mask"], ["masked"]))
        scaled = "masked"
    nodes.append(helper.make_node("Softmax", [scaled], ["p"], axis=softmax_axis))
    probs = "p"
    if guard:
        nodes += [helper.make_node("IsNaN", ["p"], ["nan"]), helper.make_node("Where", ["nan", "zero", "p"], ["pg"])]
        probs = "pg"
    nodes.append(helper.make_node("MatMul", [probs, "vt"], ["ctx"]))
    context = "ctx"
    if context_view:
        _dims(nodes, "cd_b", "ctx", 0)
        _dims(nodes, "cd_s", "qt", 2)
        _dims(nodes, "cd_d", "vt", 3)
        order = {"same": ["cd_b", "im1", "cd_s", "cd_d"], "zero_copy": ["i0", "im1", "cd_s", "cd_d"],
                 "moved": ["cd_b", "cd_s", "im1", "cd_d"]}[context_view]
        nodes += [helper.make_node("Concat", order, ["view_shape"], axis=0),
                  helper.make_node("Reshape", ["ctx", "view_shape"], ["view"])]
        context = "view"
    nodes += [helper.make_node("Transpose", [context], ["ctxt"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["ctxt", "merge"], ["out"])]
    outputs = [_vi("out", ["batch", S, H * D])]
    if shape_reader:  # the legacy exporter reads the sizes of the split heads and the context
        nodes += [helper.make_node("Shape", ["qt"], ["qshape"]), helper.make_node("Shape", ["ctx"], ["cshape"], start=1, end=3)]
        outputs += [helper.make_tensor_value_info("qshape", TensorProto.INT64, [4]),
                    helper.make_tensor_value_info("cshape", TensorProto.INT64, [2])]
    inputs = [_vi(n, ["batch", S, H * D]) for n in "qkv"] + ([_vi("mask", ["batch", 1, 1, S])] if with_mask else [])
    return _model(nodes, inputs, outputs, inits, 17), len(nodes)


def _attention_feeds(masked_rows=True, batch=B):
    feeds = {n: RNG.standard_normal((batch, S, H * D)).astype(np.float32) for n in "qkv"}
    mask = np.zeros((batch, 1, 1, S), np.float32)
    mask[1, ..., 3:] = -np.inf  # padding in the second sequence
    if masked_rows:
        mask[0, ..., :] = -np.inf  # every key masked: the guarded rows give zeros
    feeds["mask"] = mask
    return feeds


@pytest.mark.parametrize("key_form", ["legacy", "two_transposes"])
@pytest.mark.parametrize("scale_form", ["split", "div"])
def test_attention(tmp_path, key_form, scale_form):
    model, count = _attention_model(key_form, scale_form=scale_form)
    before, after = _check(tmp_path, model, _attention_feeds())
    assert len(before) == count
    assert after == [("", "Reshape")] * 3 + [("com.graft", "Attention"), ("", "Reshape")]


@pytest.mark.parametrize("context_view", [None, "same", "zero_copy"])
def test_attention_exported_reshapes(tmp_path, context_view):
    """The dynamo exporter's key transpose through [B*H, S, D] and the legacy exporter's Reshape of the
    context, their targets computed from Shape nodes over a dynamic batch."""
    model, _ = _attention_model("dynamo" if context_view is None else "legacy", context_view=context_view)
    _, after = _check(tmp_path, model, _attention_feeds())
    assert after.count(("com.graft", "Attention")) == 1
    assert ("", "Softmax") not in after and ("", "Transpose") not in after and ("", "Shape") not in after


@pytest.mark.parametrize("form", ["dynamo_swapped", "moved_view"])
def test_attention_left_alone_when_a_reshape_moves_elements(tmp_path, form):
    if form == "dynamo_swapped":  # the merged axis split back as [H, B], a batch of H to run
        model, _ = _attention_model("dynamo_swapped")
        feeds = _attention_feeds(masked_rows=False, batch=H)
    else:  # the context reshaped to [B, S, H, D] before the Transpose
        model, _ = _attention_model(context_view="moved")
        feeds = _attention_feeds(masked_rows=False)
    _, after = _check(tmp_path, model, feeds)
    assert ("", "Softmax") in after and ("com.graft", "Attention") not in after


def test_attention_without_mask_or_guard(tmp_path):
    model, _ = _attention_model(guard=False, with_mask=False)
    feeds = {n: v for n, v in _attention_feeds().items() if n != "mask"}
    _, after = _check(tmp_path, model, feeds)
    assert ("com.graft", "Attention") in after and ("", "Softmax") not in after


def test_attention_keeps_shape_readers(tmp_path):
    model, _ = _attention_model(shape_reader=True)
    feeds = _attention_feeds(masked_rows=False)
    _, after = _check(tmp_path, model, feeds)
    assert ("com.graft", "Attention") in after and ("", "Transpose") not in after
    got, _ = _run(tmp_path, model, feeds, 2)
    np.testing.assert_array_equal(got[1], [B, H, S, D])
    np.testing.assert_array_equal(got[2], [H, S])


def test_attention_left_alone_over_another_axis(tmp_path):
    model, count = _attention_model(softmax_axis=2)
    _, after = _check(tmp_path, model, _attention_feeds(masked_rows=False))
    assert ("", "Softmax") in after and ("com.graft", "Attention") not in after


# --- Dense layers: MatMul + bias Add (+ activation) -> com.graft.FusedMatMul ---------------

def _dense_model(activation, opset=17, x_shape=(4, 8)):
    """x @ w + b followed by `activation` (an op name, "gelu_erf" for the exported erf form, or None)."""
    inits = [_const("w", RNG.standard_normal((8, 16))), _const("b", RNG.standard_normal(16))]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["h"])]
    if activation == "gelu_erf":
        erf_nodes, erf_inits = _gelu_erf("legacy")
        nodes += erf_nodes[1:]  # reads h
        inits += erf_inits
    elif activation == "gelu_tanh":
        nodes.append(helper.make_node("Gelu", ["h"], ["y"], approximate="tanh"))
    elif activation:
        nodes.append(helper.make_node(activation, ["h"], ["y"]))
    out = "y" if activation else "h"
    return _model(nodes, [_vi("x", x_shape)], [_vi(out, [4, 16])], inits, opset)


def _fused_attributes(tmp_path):
    fused = [n for n in onnx.load(tmp_path / "opt2.onnx").graph.node if n.op_type == "FusedMatMul"]
    return [{a.name: helper.get_attribute_value(a) for a in n.attribute} | {"inputs": len(n.input)} for n in fused]


@pytest.mark.parametrize("activation,opset", [("Relu", 17), ("Tanh", 17), ("Sigmoid", 17), ("gelu_erf", 17),
                                              ("gelu_erf", 20), ("Gelu", 20)])
def test_dense_activation(tmp_path, activation, opset):
    model = _dense_model(activation, opset)
    _, after = _check(tmp_path, model, {"x": RNG.standard_normal((4, 8)).astype(np.float32) * 2})
    assert after == [("com.graft", "FusedMatMul")]
    name = "Gelu" if activation.startswith("gelu") else activation
    assert _fused_attributes(tmp_path) == [{"transA": 0, "transB": 0, "activation": name.encode(), "inputs": 3}]


def test_dense_tanh_gelu_left_to_its_own_node(tmp_path):
    """FusedMatMul's Gelu is the erf form: the tanh approximation stays a node."""
    model = _dense_model("gelu_tanh", 20)
    _, after = _check(tmp_path, model, {"x": RNG.standard_normal((4, 8)).astype(np.float32)})
    assert after == [("com.graft", "FusedMatMul"), ("", "Gelu")]


def test_dense_activation_left_alone_when_the_product_is_read_elsewhere(tmp_path):
    model = _dense_model("Relu")
    model.graph.output.append(_vi("h", [4, 16]))
    _, after = _check(tmp_path, model, {"x": RNG.standard_normal((4, 8)).astype(np.float32)})
    assert after == [("com.graft", "FusedMatMul"), ("", "Relu")]


@pytest.mark.parametrize("x_shape", [None, (4, 8), (2, 4, 8), (8,)])
def test_dense_bias_with_operand_of_unknown_rank(tmp_path, x_shape):
    """The bias joins the product whatever A's rank, declared or not (no shape: nothing records the
    product's rank); B's rank comes from the weight."""
    model = _dense_model(None, x_shape=x_shape)
    model.graph.output[0].type.tensor_type.ClearField("shape")
    feed = RNG.standard_normal(x_shape or (3, 4, 8)).astype(np.float32)
    _, after = _check(tmp_path, model, {"x": feed})
    assert after == [("com.graft", "FusedMatMul")]


# --- BERT ---------------------------------------------------------------------------------

def _bert(tmp_path, exporter):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    bert = transformers.BertModel(transformers.BertConfig(num_hidden_layers=2)).eval()
    with torch.no_grad():  # random everywhere, so no two biases or norms share a value
        for p in bert.parameters():
            p.add_(torch.randn_like(p) * 0.05)

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state, out.pooler_output

    batch, seq = 2, 128
    ids = torch.randint(0, 30522, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.int64)
    types = torch.zeros(batch, seq, dtype=torch.int64)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    path = tmp_path / f"bert_{exporter}.onnx"
    if exporter == "dynamo":
        dim = torch.export.Dim("batch")
        torch.onnx.export(Wrapper().eval(), (ids, mask, types), str(path), dynamo=True, opset_version=18,
                          input_names=names, output_names=["hidden", "pooled"], external_data=False,
                          dynamic_shapes={n: {0: dim} for n in names})
    else:
        torch.onnx.export(Wrapper().eval(), (ids, mask, types), str(path), dynamo=False, opset_version=17,
                          input_names=names, output_names=["hidden", "pooled"],
                          dynamic_axes={n: {0: "batch"} for n in names})
    mask = np.ones((batch, seq), np.int64)
    mask[1, 100:] = 0  # padding in the second sequence
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask, "token_type_ids": types.numpy()}
    return onnx.load(path), feeds


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_bert(tmp_path, exporter):
    model, feeds = _bert(tmp_path, exporter)
    before, after = _check(tmp_path, model, feeds, atol=1e-4)
    print(f"{exporter}: {len(before)} nodes unfused, {len(after)} fused")
    # The intermediate layer's Gelu runs in its FusedMatMul, after the bias.
    assert ("com.graft", "Gelu") not in after
    fused = [n for n in onnx.load(tmp_path / "opt2.onnx").graph.node if n.op_type == "FusedMatMul"]
    assert len(fused) == 12  # the projections q, k, v, the attention's output, both dense layers
    assert sum(a.s == b"Gelu" for n in fused for a in n.attribute if a.name == "activation") == 2
    # Two per layer and the embeddings' sum (word + token type, + position).
    assert after.count(("com.graft", "SkipLayerNormalization")) == 5
    assert after.count(("com.graft", "Attention")) == 2  # one per layer
    for op in ("Erf", "ReduceMean", "Softmax", "IsNaN"):
        assert ("", op) not in after
    assert len(after) < len(before)
