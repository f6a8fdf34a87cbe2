#!/usr/bin/env bash
# The demo: installs what is missing, builds graft, trains a small CNN on scikit-learn's digits
# with graft (checked step by step against PyTorch), prints test accuracy, saves the loss curve
# (digits_loss.png), and runs the trained model with graft and with onnxruntime. Then, where
# Open MPI's mpirun is present, trains the same CNN data-parallel on 2 ranks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
eval "$(bash scripts/setup.sh | tail -1)"
bash scripts/build.sh _C >/dev/null
quiet() { grep -v "torchvision is not installed" >&2; }
PYTHONPATH="$ROOT/python" python -W ignore examples/train_digits.py "$@" 2> >(quiet)
if command -v mpirun >/dev/null; then
  echo
  echo "Data-parallel: the same CNN on 2 ranks (mpirun -np 2), global batch 32"
  PYTHONPATH="$ROOT/python" OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -np 2 \
    -x PYTHONPATH -x OMP_NUM_THREADS python -W ignore examples/train_digits_distributed.py 2> >(quiet)
else
  echo "mpirun not found (Debian: openmpi-bin): the 2-rank data-parallel demo is skipped"
fi
