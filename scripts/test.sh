#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, then runs the C++ unit tests
# (ctest), the ONNX backend conformance suite, the Python tests (pytest), and last the sanitized
# build's checks (scripts/sanitize.sh: ASan and UBSan over ctest and conformance, fuzzing).
#
#   --fresh           installs and builds everything into a new, empty temporary cache folder
#                     (Python environment from the lock, ONNX's library, ccache) and rebuilds
#                     build/ and build-san/ from nothing, as on a new machine: what a warm cache
#                     hides (an unpinned package, a stale object) fails here. The folder is
#                     removed at the end.
#   --no-sanitize     without the sanitized build and its checks
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
sanitize=1
for arg in "$@"; do
  case "$arg" in
    --fresh)
      GRAFT_CACHE="$(mktemp -d "${TMPDIR:-/tmp}/graft-fresh.XXXXXX")"
      export GRAFT_CACHE
      trap 'rm -rf "$GRAFT_CACHE"' EXIT
      rm -rf "$ROOT/build" "$ROOT/build-san"
      echo "== fresh: empty cache folder $GRAFT_CACHE, build/ and build-san/ from nothing"
      ;;
    --no-sanitize) sanitize="" ;;
    *)
      echo "usage: bash scripts/test.sh [--fresh] [--no-sanitize]" >&2
      exit 2
      ;;
  esac
done
env_line="$(bash scripts/setup.sh | tail -1)" || { echo "setup failed"; exit 1; }
eval "$env_line"
bash scripts/build.sh || { echo "build failed"; exit 1; }

export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
status=0
echo "== C++ unit tests"
ctest --test-dir build --output-on-failure -j2 || status=1
echo "== ONNX backend conformance (tests/conformance/results.txt)"
# Kernel outputs start uninitialized; poisoning them (NaN) makes a kernel that reads an output
# element before writing it fail here instead of depending on what the memory held.
GRAFT_POISON_OUTPUTS=1 python -W ignore tests/conformance/run.py || status=1
echo "== Python tests"
python -m pytest tests/python -q -p no:cacheprovider || status=1
if [ -n "$sanitize" ]; then
  echo "== Sanitizers and fuzzing (scripts/sanitize.sh)"
  bash scripts/sanitize.sh || status=1
fi
exit $status
