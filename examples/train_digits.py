"""graft demo: train a small CNN on scikit-learn's digits, then deploy it.

1. A PyTorch CNN (the model definition only) is exported to ONNX with its loss.
2. graft builds the gradient and SGD-momentum graphs and trains it (TrainingSession).
3. The same model, data order and initial weights are trained with PyTorch for the first 50
   steps; the two loss curves are compared.
4. The trained weights go into an inference model, run by graft and by onnxruntime on the test
   set; test accuracy and the largest output difference are printed, and the loss curve is
   saved as a PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import graft
from graft.training import TrainingSession

BATCH = 32


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


class WithLoss(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.net(x), labels)


def export(module: nn.Module, args: tuple, path: str, names: list[str], outputs: list[str], **kw) -> onnx.ModelProto:
    torch.onnx.export(module, args, path, input_names=names, output_names=outputs, dynamo=True,
                      external_data=False, optimize=False, verbose=False, **kw)
    model = onnx.load(path)
    model.ir_version = min(model.ir_version, 10)  # onnxruntime reads IR <= 13
    return model


def save_inference_model(net: nn.Module, trained: dict, x_example: np.ndarray, folder: str) -> str:
    """Exports `net` for inference (logits only, any batch size) with the `trained` weights (named
    as in the training model, whose parameters carry the "net." prefix); returns the file's path."""
    infer = export(net, (torch.tensor(x_example),), os.path.join(folder, "infer.onnx"), ["x"], ["logits"],
                   dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    for init in infer.graph.initializer:
        key = init.name if init.name in trained else "net." + init.name
        if key in trained:
            init.CopyFrom(onnx.numpy_helper.from_array(trained[key], init.name))
    path = os.path.join(folder, "digits_cnn.onnx")
    onnx.save(infer, path)
    return path


def progress(done: int, total: int, loss: float, start: float) -> None:
    width = 30
    filled = int(width * done / total)
    sys.stdout.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] step {done}/{total} loss {loss:.4f} "
                     f"{time.perf_counter() - start:.1f}s")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--plot", default="digits_loss.png")
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--momentum", type=float, default=0.9)
    args = parser.parse_args()
    run(args.epochs, args.lr, args.momentum, args.plot)


def run(epochs: int, lr: float, momentum: float, plot: str | None) -> dict:
    """Trains, compares with PyTorch, deploys; returns the figures it prints."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    order_rng = np.random.default_rng(0)
    batches = []
    for _ in range(epochs):
        perm = order_rng.permutation(len(x_train))
        batches += [perm[i:i + BATCH] for i in range(0, len(perm) - BATCH + 1, BATCH)]
    print(f"digits: {len(x_train)} training and {len(x_test)} test images, {len(batches)} steps of {BATCH}")

    torch.manual_seed(0)
    net = DigitsCNN()
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        train_model = export(WithLoss(net), (torch.tensor(x_train[:BATCH]), torch.tensor(y_train[:BATCH])),
                             os.path.join(tmp, "train.onnx"), ["x", "labels"], ["loss"])
        sess = TrainingSession(train_model, loss="loss", optimizer="sgd", lr=lr, momentum=momentum)
        print(f"graft training graph: {len(train_model.graph.node)} forward nodes, parameters {sess.parameters()}")

        losses = []
        start = time.perf_counter()
        for i, idx in enumerate(batches):
            losses.append(sess.train_step({"x": x_train[idx], "labels": y_train[idx]}))
            if i % 20 == 0 or i == len(batches) - 1:
                progress(i + 1, len(batches), losses[-1], start)
        print()

        # The same 50 steps in PyTorch, from the same initial weights and data order.
        net.load_state_dict(initial)
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
        torch_losses = []
        for idx in batches[:50]:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(torch.tensor(x_train[idx])), torch.tensor(y_train[idx]))
            loss.backward()
            opt.step()
            torch_losses.append(float(loss))
        rel = np.abs(np.array(losses[:50]) - np.array(torch_losses)) / np.abs(np.array(torch_losses))
        print(f"first 50 steps: max relative difference from the PyTorch loss curve {rel.max():.2e}")

        # Deploy: the inference model (logits only) with graft's trained weights.
        path = save_inference_model(net, sess.state(), x_test[:4], tmp)
        ours = graft.InferenceSession(path).run(None, {"x": x_test})[0]
        theirs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x_test})[0]
        accuracy = float((ours.argmax(1) == y_test).mean())
        print(f"test accuracy (graft): {accuracy:.4f}; onnxruntime agrees on "
              f"{float((theirs.argmax(1) == ours.argmax(1)).mean()):.4f} of predictions, "
              f"max |graft - onnxruntime| = {np.abs(ours - theirs).max():.2e} "
              f"(relative to the largest logit: {np.abs(ours - theirs).max() / np.abs(theirs).max():.2e})")

    figures = {"accuracy": accuracy, "curve_rel_diff": float(rel.max()),
               "max_diff_vs_onnxruntime": float(np.abs(ours - theirs).max()),
               "max_rel_diff_vs_onnxruntime": float(np.abs(ours - theirs).max() / np.abs(theirs).max()),
               "agreement": float((theirs.argmax(1) == ours.argmax(1)).mean())}
    if not plot:
        return figures
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, label="graft")
    ax.plot(torch_losses, "--", label="PyTorch (first 50 steps)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(plot, dpi=100)
    print(f"loss curve saved to {plot}")
    return figures


if __name__ == "__main__":
    main()
