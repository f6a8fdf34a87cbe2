"""The README demo: a CNN trained by graft on scikit-learn's digits reaches 97% test accuracy,
follows PyTorch's loss curve, and deploys to graft and onnxruntime alike."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "examples"))

from train_digits import run  # noqa: E402


def test_digits_demo(tmp_path):
    figures = run(epochs=30, lr=0.02, momentum=0.9, plot=str(tmp_path / "loss.png"))
    print(figures)
    assert figures["accuracy"] >= 0.97
    assert figures["curve_rel_diff"] < 1e-4
    # The two engines sum in different orders (and pick kernels by the CPU's instruction set): the
    # logits agree to a few float32 ulps of the largest, not to an absolute figure.
    assert figures["agreement"] == 1.0 and figures["max_rel_diff_vs_onnxruntime"] < 1e-6
    assert (tmp_path / "loss.png").stat().st_size > 1000
