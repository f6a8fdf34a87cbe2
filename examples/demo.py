"""graft demo: build a small CNN as an ONNX model, run it with graft and with onnxruntime.

Prints both runtimes' outputs side by side and their largest difference, and a timing of each on
the same machine in the same process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import graft


def build_cnn(seed: int = 0) -> onnx.ModelProto:
    """Conv-BN-Relu-MaxPool, Conv-Relu, GlobalAveragePool, Gemm, Softmax on 1x28x28 images."""
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int, scale: float = 0.1) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [
        weight("conv1.w", 16, 1, 3, 3, scale=0.3), weight("conv1.b", 16),
        numpy_helper.from_array((rng.random(16) + 0.5).astype(np.float32), "bn.scale"),
        weight("bn.bias", 16), weight("bn.mean", 16),
        numpy_helper.from_array((rng.random(16) + 0.5).astype(np.float32), "bn.var"),
        weight("conv2.w", 32, 16, 3, 3), weight("conv2.b", 32),
        weight("fc.w", 10, 32, scale=0.3), weight("fc.b", 10),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv1.w", "conv1.b"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["b1"], name="bn"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], transB=1, name="fc"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax"),
    ]
    graph = helper.make_graph(nodes, "small_cnn",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="graft-demo")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def time_runs(run, repeat: int) -> float:
    run()
    start = time.perf_counter()
    for _ in range(repeat):
        run()
    return (time.perf_counter() - start) / repeat * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "small_cnn.onnx")
        onnx.save(build_cnn(), path)
        print(f"built {path}: {len(onnx.load(path).graph.node)} nodes")
        images = np.random.default_rng(1).standard_normal((args.batch, 1, 28, 28)).astype(np.float32)

        ours = graft.InferenceSession(path)
        theirs = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = ours.run(None, {"image": images})[0]
        want = theirs.run(None, {"image": images})[0]

        print(f"graft providers: {ours.get_providers()}  onnxruntime {ort.__version__}")
        print("first image, class probabilities:")
        print("  graft       ", np.array2string(got[0], precision=4, max_line_width=120))
        print("  onnxruntime ", np.array2string(want[0], precision=4, max_line_width=120))
        print(f"predicted classes agree: {bool((got.argmax(1) == want.argmax(1)).all())}")
        print(f"max |graft - onnxruntime| = {np.abs(got - want).max():.3g}")
        t_graft = time_runs(lambda: ours.run(None, {"image": images}), args.repeat)
        t_ort = time_runs(lambda: theirs.run(None, {"image": images}), args.repeat)
        print(f"batch {args.batch}: graft {t_graft:.2f} ms, onnxruntime {t_ort:.2f} ms per run")


if __name__ == "__main__":
    main()
