#!/usr/bin/env bash
# The CUDA provider's device checks, in one call on a machine with one GPU (the CUDA toolkit,
# Python with PyTorch, no network): the C++ device tests, the CUDA kernels against the CPU
# provider, the GPU pytest tests and the GPU benchmark, then a summary. Budget: under 8 minutes.
#
#   here:       bash scripts/gpu_bundle.sh          (writes .gpu/bundle.tar.xz)
#   GPU machine: bash scripts/gpu_check.sh          (with .gpu carried beside the repository)
#
# It links graft's C++ tests and its Python extension there from the bundle's objects, against
# that machine's Python (whatever version it is). Environment: PYTHON (default python3), CXX
# (default g++), CUDA_HOME (default /usr/local/cuda), GPU_CHECK_QUICK=1 for a shorter benchmark.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
START=$(date +%s)
PY="${PYTHON:-python3}"
CXX="${CXX:-g++}"
CUDA="${CUDA_HOME:-/usr/local/cuda}"
WORK="$(mktemp -d /tmp/graft_gpu.XXXXXX)"
SUMMARY="$WORK/summary"
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo "$(($(date +%s) - START)) s"; }

if [ ! -f .gpu/bundle.tar.xz ]; then
  echo "gpu_check: .gpu/bundle.tar.xz is missing: run scripts/gpu_bundle.sh first and carry .gpu" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || note "nvidia-smi: failed"
tar -C "$WORK" -xJf .gpu/bundle.tar.xz
# CUDA's libraries: the toolkit's and those of the NVIDIA wheels PyTorch brings (cuDNN, cuBLAS).
WHEELS="$("$PY" -c "import glob, os, sysconfig; print(':'.join(sorted(glob.glob(os.path.join(sysconfig.get_paths()['purelib'], 'nvidia', '*', 'lib')))))" 2>/dev/null)"
export LD_LIBRARY_PATH="$WORK/lib:$CUDA/lib64:${WHEELS}:${LD_LIBRARY_PATH:-}"
LINK=(-Wl,--whole-archive "$WORK/lib/libgraft_objects.a" -Wl,--no-whole-archive "$WORK/lib/libonnx.a"
  "$WORK/lib/libonnx_proto.a" -L"$WORK/lib" -lprotobuf -ldnnl -lmpi -fopenmp -L"$CUDA/lib64"
  -lcudart_static -ldl -lrt -lpthread)

# 1. Link the C++ tests and the device checks of tests/gpu.
"$CXX" -o "$WORK/graft_tests" -Wl,--whole-archive "$WORK/lib/libgraft_test_objects.a" \
  -Wl,--no-whole-archive "${LINK[@]}" "$WORK/lib/libgtest_main.a" "$WORK/lib/libgtest.a" &
for a in "$WORK"/lib/libgraft_cuda_*.a; do
  [ -f "$a" ] || continue
  name="$(basename "$a" .a)"
  "$CXX" -o "$WORK/${name#lib}" -Wl,--whole-archive "$a" -Wl,--no-whole-archive "${LINK[@]}" &
done
# 2. Compile and link the Python extension for this machine's Python.
PYINC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
PBINC="$("$PY" -c 'import pybind11; print(pybind11.get_include())' 2>/dev/null)"
SUFFIX="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
PY_OK=1
if [ -z "$PBINC" ] || [ ! -f "$PYINC/Python.h" ]; then
  note "python extension: not built ($PY has no Python.h or no pybind11)"
  PY_OK=0
else
  mkdir -p "$WORK/py"
  for src in python/src/*.cc; do
    "$CXX" -c -O2 -std=c++20 -fPIC -fvisibility=hidden -fopenmp -DONNX_ML=1 -DONNX_NAMESPACE=onnx \
      -I"$ROOT" -isystem "$WORK/include" -isystem "$PYINC" -isystem "$PBINC" -isystem "$CUDA/include" \
      "$src" -o "$WORK/py/$(basename "$src" .cc).o" &
  done
fi
wait
if [ "$PY_OK" = 1 ]; then
  "$CXX" -shared -o "python/graft/_C$SUFFIX" "$WORK"/py/*.o -Wl,--exclude-libs,ALL "${LINK[@]}" ||
    { note "python extension: link failed"; PY_OK=0; }
fi
note "built in $(elapsed)"

# 3. The C++ device tests: the CUDA kernels against the CPU provider (the host tests'
# cases, run with CUDAExecutionProvider), then tests/gpu's checks.
status=0
if [ -x "$WORK/graft_tests" ]; then
  GRAFT_TEST_DEVICE=cuda "$WORK/graft_tests" --gtest_filter='CudaHost*' --gtest_brief=1 >"$WORK/kernels.log" 2>&1
  rc=$?
  tail -n 30 "$WORK/kernels.log"
  note "CUDA kernels vs CPU provider: $(grep -E '^\[  (PASSED|FAILED)  \]' "$WORK/kernels.log" | tr '\n' ' ') (exit $rc)"
  [ $rc -eq 0 ] || status=1
else
  note "graft_tests: link failed"
  status=1
fi
for exe in "$WORK"/graft_cuda_*; do
  [ -x "$exe" ] || continue
  "$exe" >"$exe.log" 2>&1
  rc=$?
  tail -n 20 "$exe.log"
  note "$(basename "$exe"): exit $rc"
  [ $rc -eq 0 ] || status=1
done
note "C++ device tests done at $(elapsed)"

# 4. The GPU pytest tests and the benchmark.
if [ "$PY_OK" = 1 ]; then
  PYTHONPATH="$ROOT/python" "$PY" -m pytest -q tests/python/gpu -p no:cacheprovider -x 2>&1 | tail -n 25 | tee "$WORK/pytest.log"
  note "GPU pytest: $(tail -n 1 "$WORK/pytest.log")"
  if [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then
    BENCH=(--steps 5 --warmup 2 --rounds 1)
  else
    BENCH=(--steps 15 --warmup 4 --rounds 1)
  fi
  PYTHONPATH="$ROOT/python" timeout 300 "$PY" bench/gpu_bench.py "${BENCH[@]}" 2>&1 | grep -v -i warning | tail -n 12 | tee "$WORK/bench.log"
  note "benchmark: see the table above"
fi
echo
echo "=== gpu_check summary ($(elapsed)) ==="
cat "$SUMMARY"
exit $status
