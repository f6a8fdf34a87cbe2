#!/usr/bin/env bash
# The demo: installs what is missing, builds graft, builds a small CNN as an ONNX model, runs it
# with graft and with onnxruntime, and prints how far apart their outputs are.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
eval "$(bash scripts/setup.sh | tail -1)"
bash scripts/build.sh _C >/dev/null
PYTHONPATH="$ROOT/python" python examples/demo.py "$@"
