#!/usr/bin/env bash
# Installs everything graft needs on Debian 12: Debian packages, a Python virtual environment
# that holds exactly the lock file (python/requirements.lock: every package, transitive ones
# included, at one version with its hashes) and ONNX's C++ library built from the sdist of the
# locked `onnx` package.
# Everything lands in $GRAFT_CACHE (default ~/.cache/graft), outside the clone, so a second run
# takes seconds. Prints the environment to source on its last line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GRAFT_CACHE="${GRAFT_CACHE:-$HOME/.cache/graft}"
VENV="$GRAFT_CACHE/venv"
LOCK="$ROOT/python/requirements.lock"
mkdir -p "$GRAFT_CACHE"

log() { echo "[setup] $*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
APT_PACKAGES=(build-essential cmake ninja-build ccache git pkg-config
  libprotobuf-dev protobuf-compiler libgtest-dev libgmock-dev
  libopenmpi-dev openmpi-bin libdnnl-dev libopenblas-dev
  python3 python3-dev python3-venv clang-format
  clang-14 libclang-rt-14-dev libomp-14-dev)  # the last three: scripts/sanitize.sh
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- Python virtual environment ---------------------------------------------------------------
# The environment is keyed on the lock: a different lock builds a new environment from nothing,
# so no package of an earlier lock survives. pip downloads into the cache folder too.
PY="${GRAFT_PYTHON:-python3}"
export PIP_CACHE_DIR="$GRAFT_CACHE/pip" PIP_DISABLE_PIP_VERSION_CHECK=1
lock_hash="$(sha256sum "$LOCK" | cut -c1-16)"
if [ ! -f "$VENV/.stamp-$lock_hash" ]; then
  log "creating the Python environment in $VENV from $(basename "$LOCK")"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --require-hashes --no-deps -r "$LOCK" >&2
  # Verify before anything builds on it: dependencies consistent, versions exactly the lock's.
  "$VENV/bin/python" -m pip check >&2
  "$VENV/bin/python" "$ROOT/scripts/check_lock.py" "$LOCK"
  touch "$VENV/.stamp-$lock_hash"
fi

# --- ONNX C++ library, same version as the Python package ------------------------------------
ONNX_VERSION="$("$VENV/bin/python" -c 'import onnx; print(onnx.__version__)')"
ONNX_PREFIX="$GRAFT_CACHE/onnx-$ONNX_VERSION"
if [ ! -f "$ONNX_PREFIX/.stamp" ]; then
  log "building ONNX $ONNX_VERSION's C++ library into $ONNX_PREFIX"
  src="$GRAFT_CACHE/src"
  mkdir -p "$src"
  if [ ! -d "$src/onnx-$ONNX_VERSION" ]; then
    # The source distribution is checked against the lock's hashes like every wheel.
    awk '/^onnx==/{p=1} p&&/^[a-z]/&&!/^onnx==/{p=0} p' "$LOCK" >"$src/onnx.lock"
    "$VENV/bin/python" -m pip download -q --no-deps --no-binary onnx --no-build-isolation \
      --require-hashes -r "$src/onnx.lock" -d "$src" >&2
    tar -xzf "$src/onnx-$ONNX_VERSION.tar.gz" -C "$src"
  fi
  rm -rf "$ONNX_PREFIX" "$src/build-$ONNX_VERSION"
  "$VENV/bin/cmake" -S "$src/onnx-$ONNX_VERSION" -B "$src/build-$ONNX_VERSION" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DONNX_BUILD_PYTHON=OFF -DONNX_BUILD_TESTS=OFF -DONNX_ML=ON \
    -DONNX_NAMESPACE=onnx -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DONNX_USE_LITE_PROTO=OFF \
    -DCMAKE_INSTALL_PREFIX="$ONNX_PREFIX" >&2
  "$VENV/bin/cmake" --build "$src/build-$ONNX_VERSION" -j"$(nproc)" >&2
  "$VENV/bin/cmake" --install "$src/build-$ONNX_VERSION" >&2
  touch "$ONNX_PREFIX/.stamp"
fi

echo "export GRAFT_CACHE='$GRAFT_CACHE' VIRTUAL_ENV='$VENV' ONNX_ROOT='$ONNX_PREFIX' PATH='$VENV/bin':\"\$PATH\""
