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
    assert figures["agreement"] == 1.0 and figures["max_diff_vs_onnxruntime"] < 1e-5
    assert (tmp_path / "loss.png").stat().st_size > 1000
