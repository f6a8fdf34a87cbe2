"""The blocked-layout pass (ir/transforms/nchwc.cc) and its kernels: convolution chains run in
oneDNN's nChw16c / nChw8c layout with reorders only at the chain's ends, activations and residual
Adds folded into the convolutions; outputs match onnxruntime and graft's unoptimized graph."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import graft


class Net:
    """A small CNN written node by node, with random weights."""

    def __init__(self, channels: int, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0
        self.channels = channels

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}{self.count}"

    def const(self, array) -> str:
        n = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(array, np.float32), n))
        return n

    def node(self, op: str, inputs, **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k=3, stride=1, group=1, bias=True, **attrs):
        w = self.rng.standard_normal((cout, cin // group, k, k)) / np.sqrt(cin // group * k * k)
        inputs = [x, self.const(w)] + ([self.const(self.rng.standard_normal(cout) * 0.1)] if bias else [])
        return self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[k // 2] * 4, group=group, **attrs)

    def relu6(self, x):
        return self.node("Clip", [x, self.const(0.0), self.const(6.0)])

    def model(self, outputs, spatial=12):
        graph = helper.make_graph(
            self.nodes, "net",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", self.channels, spatial, spatial])],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], self.inits)
        return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def mobilenet_block(channels=3):
    """A stem conv, an inverted residual with a depthwise conv and ReLU6, a residual Add."""
    net = Net(channels)
    stem = net.relu6(net.conv("x", channels, 24, stride=2))
    expand = net.relu6(net.conv(stem, 24, 72, k=1))
    depthwise = net.relu6(net.conv(expand, 72, 72, group=72))
    project = net.conv(depthwise, 72, 24, k=1)
    out = net.node("Add", [project, stem])
    pooled = net.node("GlobalAveragePool", [out])
    return net.model([pooled, out])


def resnet_block(channels=20):
    """Odd channel counts (not multiples of 16), a max pool, a bottleneck with Add -> Relu."""
    net = Net(channels)
    stem = net.node("Relu", [net.conv("x", channels, 37)])
    pool = net.node("MaxPool", [stem], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    a = net.node("Relu", [net.conv(pool, 37, 19, k=1, bias=False)])
    b = net.node("LeakyRelu", [net.conv(a, 19, 19)], alpha=0.1)
    c = net.conv(b, 19, 37, k=1)
    out = net.node("Relu", [net.node("Add", [c, pool])])
    avg = net.node("AveragePool", [out], kernel_shape=[2, 2], strides=[2, 2])
    sig = net.node("HardSigmoid", [net.conv(avg, 37, 5, k=1)], alpha=0.3, beta=0.4)
    return net.model([sig, net.node("Sigmoid", [out])], spatial=13)


def run_graft(tmp_path, model, x, level, providers=None):
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    opts = graft.SessionOptions()
    opts.graph_optimization_level = level
    opts.optimized_model_filepath = str(tmp_path / f"opt{level}.onnx")
    kwargs = {"providers": providers} if providers else {}
    outs = graft.InferenceSession(str(path), sess_options=opts, **kwargs).run(None, {"x": x})
    return outs, onnx.load(opts.optimized_model_filepath).graph


def run_ort(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})


@pytest.mark.parametrize("build", [mobilenet_block, resnet_block])
@pytest.mark.parametrize("batch", [1, 3])
def test_blocked_chains_match_onnxruntime_and_the_unoptimized_graph(tmp_path, build, batch):
    model = build()
    spatial = model.graph.input[0].type.tensor_type.shape.dim[2].dim_value
    x = np.random.default_rng(batch).standard_normal(
        (batch, model.graph.input[0].type.tensor_type.shape.dim[1].dim_value, spatial, spatial)
    ).astype(np.float32)
    got, graph = run_graft(tmp_path, model, x, 99)
    plain, _ = run_graft(tmp_path, model, x, 1)
    want = run_ort(model, x)
    assert any(n.op_type == "NchwcConv" for n in graph.node)
    for g, p, w in zip(got, plain, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(g, p, rtol=1e-4, atol=1e-5)


def test_mobilenet_block_folds_activations_and_the_residual_add(tmp_path):
    x = np.zeros((1, 3, 12, 12), np.float32)
    _, graph = run_graft(tmp_path, mobilenet_block(), x, 99)
    ops = [n.op_type for n in graph.node]
    # The stem reads 3 plain channels itself; the Add's result leaves the chain twice (the
    # pooling and the graph output), through one reorder.
    assert ops == ["NchwcConv"] * 4 + ["ReorderOutput", "GlobalAveragePool"]
    convs = [n for n in graph.node if n.op_type == "NchwcConv"]
    acts = [helper.get_attribute_value(a) for n in convs for a in n.attribute if a.name == "activation"]
    assert acts == [b"Clip"] * 3
    assert [len(n.input) for n in convs] == [3, 3, 3, 4]


def test_resnet_block_reorders_only_at_the_chain_ends(tmp_path):
    x = np.zeros((1, 20, 13, 13), np.float32)
    _, graph = run_graft(tmp_path, resnet_block(), x, 99)
    ops = [n.op_type for n in graph.node]
    assert ops.count("ReorderInput") == 1 and ops[0] == "ReorderInput"
    # The two graph outputs leave the chain; nothing else is plain.
    assert ops.count("ReorderOutput") == 2
    assert "Relu" not in ops and "Add" not in ops and "LeakyRelu" not in ops
    assert ops.count("NchwcConv") == 5
    pools = {n.op_type: n for n in graph.node if n.op_type.endswith("Pool")}
    # The max pool runs each channel block as a channels-last image; the average pool as a 3-D
    # pool with a window of 1 over the block.
    assert [a.ints for a in pools["NhwcMaxPool"].attribute if a.name == "kernel_shape"] == [[3, 3]]
    assert [a.ints for a in pools["AveragePool"].attribute if a.name == "kernel_shape"] == [[2, 2, 1]]


@pytest.mark.parametrize("attrs", [
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    dict(kernel_shape=[3, 2], strides=[2, 1], pads=[0, 1, 2, 0], ceil_mode=1),
    dict(kernel_shape=[2, 2], dilations=[2, 2], strides=[1, 2]),
    dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
])
def test_blocked_max_pool_matches_onnxruntime(tmp_path, attrs):
    net = Net(16)
    a = net.node("Relu", [net.conv("x", 16, 24)])
    b = net.node("Relu", [net.conv(net.node("MaxPool", [a], **attrs), 24, 8)])
    model = net.model([b], spatial=11)
    x = np.random.default_rng(3).standard_normal((2, 16, 11, 11)).astype(np.float32)
    got, graph = run_graft(tmp_path, model, x, 99)
    assert [n.op_type for n in graph.node] == [
        "ReorderInput", "NchwcConv", "NhwcMaxPool", "NchwcConv", "ReorderOutput"]
    np.testing.assert_allclose(got[0], run_ort(model, x)[0], rtol=1e-4, atol=1e-5)


def test_level_two_and_unclaimed_nodes_keep_the_plain_layout(tmp_path):
    x = np.zeros((1, 3, 12, 12), np.float32)
    _, graph = run_graft(tmp_path, mobilenet_block(), x, 2)
    assert not any(n.domain == "com.graft" for n in graph.node)


def test_an_add_that_still_reads_its_operand_later_copies_it(tmp_path):
    net = Net(16)
    a = net.conv("x", 16, 16)
    b = net.node("Add", [net.conv(a, 16, 16), a])
    out = net.node("Add", [b, a])  # a is read after the folded Add: not overwritten
    model = net.model([out])
    x = np.random.default_rng(1).standard_normal((2, 16, 12, 12)).astype(np.float32)
    got, graph = run_graft(tmp_path, model, x, 99)
    np.testing.assert_allclose(got[0], run_ort(model, x)[0], rtol=1e-4, atol=1e-5)
    assert [n.op_type for n in graph.node].count("NchwcConv") == 2


def test_a_conv_with_groups_that_are_not_depthwise_stays_plain(tmp_path):
    net = Net(8)
    model = net.model([net.conv("x", 8, 8, group=2)])
    x = np.random.default_rng(2).standard_normal((1, 8, 12, 12)).astype(np.float32)
    got, graph = run_graft(tmp_path, model, x, 99)
    assert [n.op_type for n in graph.node] == ["Conv"]
    np.testing.assert_allclose(got[0], run_ort(model, x)[0], rtol=1e-4, atol=1e-5)


def test_a_blocked_tensor_of_the_wrong_channels_is_named(tmp_path):
    node = helper.make_node("ReorderOutput", ["x"], ["y"], name="back", domain="com.graft", channels=40)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.graft", 1)])
    sess = graft.InferenceSession(model.SerializeToString())
    with pytest.raises(Exception, match="back"):
        sess.run(None, {"x": np.zeros((1, 2, 3, 3, 16), np.float32)})
