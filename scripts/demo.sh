#!/usr/bin/env bash
# The demo: installs what is missing, builds graft, trains a small CNN on scikit-learn's digits
# with graft (checked step by step against PyTorch), prints test accuracy, saves the loss curve
# (digits_loss.png), and runs the trained model with graft and with onnxruntime.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
eval "$(bash scripts/setup.sh | tail -1)"
bash scripts/build.sh _C >/dev/null
PYTHONPATH="$ROOT/python" python -W ignore examples/train_digits.py "$@" 2> >(grep -v "torchvision is not installed" >&2)
