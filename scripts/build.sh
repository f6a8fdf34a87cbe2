#!/usr/bin/env bash
# Configures and builds graft into build/ (ccache-backed, so a fresh clone rebuilds quickly).
# Expects the environment printed by scripts/setup.sh. Extra arguments are ninja targets.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# ccache keys on paths relative to the clone, so clones in other folders share the cache.
export CCACHE_BASEDIR="$ROOT" CCACHE_DIR="${CCACHE_DIR:-$GRAFT_CACHE/ccache}" CCACHE_MAXSIZE=5G
export CCACHE_NOHASHDIR=1
# One build of a clone at a time: concurrent ninja runs on one build folder corrupt its state.
exec 9>"$ROOT/build.lock"
flock 9
# A build configured against another ONNX library (another cache folder) starts over.
if [ -f "$ROOT/build/build.ninja" ] && [ "$(cat "$ROOT/build/.onnx_root" 2>/dev/null)" != "$ONNX_ROOT" ]; then
  rm -rf "$ROOT/build"
fi
if [ ! -f "$ROOT/build/build.ninja" ]; then
  cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DONNX_ROOT="$ONNX_ROOT" \
    -DPython3_EXECUTABLE="$VIRTUAL_ENV/bin/python" >/dev/null
  echo "$ONNX_ROOT" >"$ROOT/build/.onnx_root"
fi
ninja -C "$ROOT/build" -j"${GRAFT_JOBS:-2}" "$@"
